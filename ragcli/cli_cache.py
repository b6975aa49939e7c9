"""`ragcli cache ...`, `ragcli train cache-verifier` and `ragcli eval cache`: thin wrappers over the answer cache.

Registered in `ragcli.cli` with `app.add_typer(cache_app, name="cache")`; the train and eval commands attach
themselves to the apps of `ragcli.cli_eval` when this module is imported.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ragcli.cli_eval import eval_app, train_app
from ragcli.cli_support import ConfigOpt, JsonOpt, err, errors, load, out, print_json, to_jsonable

cache_app = typer.Typer(
    help="The answer cache: calibrate, stats, judged, list, clear, optimize, invalidate.",
    no_args_is_help=True,
)

PairsOpt = Annotated[
    Path, typer.Option("--pairs", help="JSONL of text_a, text_b, label (1 = same question).")
]
VerifierOpt = Annotated[
    str | None,
    typer.Option("--verifier", help="A trained verifier (default: cache.verifier, else the last one)."),
]


def _refused(cal: dict[str, Any]) -> str:
    """What to do when calibration found no threshold (null in a card, inf in a `Calibration`): the strictest
    precision these pairs could support."""
    threshold = cal.get("threshold")
    if (threshold is not None and math.isfinite(threshold)) or "reachable" not in cal:
        return ""
    return (
        f"; no threshold reaches precision {cal['target_precision']} at the lower bound of its "
        f"{cal['confidence']:.0%} interval (the best reached is {cal['reachable']:.3f}): give more labeled pairs, "
        "fine-tune the encoder (--epochs 1), or set cache.target_precision at or below that"
    )


def _fmt_t(t: float | None) -> str:
    """A threshold for text output; `none (never serves)` where no threshold met the target (null in JSON)."""
    return "none (never serves)" if t is None or not math.isfinite(t) else f"{t:.4f}"


# ---------------------------------------------------------------- train cache-verifier


@train_app.command("cache-verifier")
def train_cache_verifier_cmd(
    pairs: PairsOpt,
    name: Annotated[str, typer.Option("--name", help="Saved as <home>/verifiers/NAME.")],
    config: ConfigOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            help="cosine: two sentence vectors' cosine (with --epochs 1, of the encoder fine-tuned on your pairs); "
            "aligned: a regression over that cosine, how well each word of one question matches the other's, and "
            "pair features (the best measured on QQP, with --epochs 1); head: a network over the two vectors and "
            "pair features; cross: a cross-encoder reads both questions."
        ),
    ] = "cosine",
    base: Annotated[
        str | None,
        typer.Option(
            help="cross only: the model to start from (folder or hub id); default the packaged MiniLM."
        ),
    ] = None,
    epochs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Fine-tuning epochs (head, cosine: 0 keeps the encoder frozen; cross: 0 calibrates --base).",
        ),
    ] = 0,
    max_pairs: Annotated[int, typer.Option(min=50, help="Pairs read from the file.")] = 8000,
    target_precision: Annotated[
        float | None, typer.Option(help="Precision to calibrate for (default: cache.target_precision).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the cache verifier on labeled pairs and calibrate its threshold on a held-out part."""
    from ragcli.train.cache_verifier import VerifierRecipe, train_cache_verifier

    with errors():
        cfg = load(config)
        recipe = VerifierRecipe(
            kind=kind,  # type: ignore[arg-type]  # checked by the recipe, with a message naming the choices
            base=base,
            max_pairs=max_pairs,
            epochs=epochs,
            target_precision=target_precision or cfg.cache.target_precision,
        )

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "embed" or done == total or done % 20 == 0:
                err.print(f"[dim]{phase} {done}/{total}[/dim]")

        card = train_cache_verifier(pairs, name, cfg.home_dir(), recipe, progress=progress)
        if as_json:
            print_json(card)
            return
        cal = card["calibration"]
        out.print(
            f"trained {card['kind']} cache verifier {name!r} in {card['train_seconds']:.0f}s on "
            f"{card['pairs_used']['train']} pairs; "
            f"threshold {_fmt_t(card['threshold'])} (held-out precision {cal['precision']:.3f}, "
            f"{cal['confidence']:.0%} interval [{cal['lower']:.3f}, {cal['upper']:.3f}], hit rate "
            f"{cal['hit_rate']:.3f} on {card['pairs_used']['calibration']} pairs){_refused(cal)}"
        )


# ---------------------------------------------------------------- eval cache


@eval_app.command("cache")
def eval_cache(
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Labeled pairs: the curve.")] = None,
    replay_log: Annotated[
        Path | None, typer.Option("--replay", help="JSONL of question, group: replay through the pipeline.")
    ] = None,
    verifier: VerifierOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int | None, typer.Option(min=10, help="Use the first N pairs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision / hit-rate curve of a verifier on labeled pairs, or a replay of a question log."""
    from ragcli.errors import InputError

    with errors():
        cfg = load(config)
        if (pairs is None) == (replay_log is None):
            raise InputError("give exactly one of --pairs FILE (the curve) or --replay FILE (a question log)")
        if replay_log is not None:
            _replay(cfg, replay_log, verifier, as_json)
            return
        assert pairs is not None
        from ragcli.eval.cache_eval import evaluate_pairs
        from ragcli.eval.cache_pairs import load_pairs
        from ragcli.generation.cache_verifier import open_verifier, resolve_verifier

        labeled = load_pairs(pairs, limit=limit)  # the file's mistakes first: they are the cheaper to fix
        v = open_verifier(resolve_verifier(cfg.home_dir(), verifier or cfg.cache.verifier))
        report = evaluate_pairs(v, labeled, name=v.name, target_precision=cfg.cache.target_precision)
        if as_json:
            print_json(report)
            return
        table = Table(title=f"verifier {v.name}: held-out curve ({report.held_out_pairs} pairs)")
        for col in ("threshold", "hits", "precision", "95% interval", "hit rate"):
            table.add_column(col, justify="right")
        for p in report.curve:
            table.add_row(
                f"{p.threshold:.4f}",
                str(p.hits),
                f"{p.precision:.3f}",
                f"[{p.lower:.3f}, {p.upper:.3f}]",
                f"{p.hit_rate:.3f}",
            )
        out.print(table)
        h = report.held_out
        held = (
            f"precision {h.precision:.3f} [{h.lower:.3f}, {h.upper:.3f}], hit rate {h.hit_rate:.3f}, {h.hits} hits"
            if h.hits
            else "no hits (nothing served, so no precision to state)"
        )
        out.print(
            f"calibrated threshold {_fmt_t(report.calibrated.threshold)} for precision >= "
            f"{report.target_precision} (lower bound) on {report.calibration_pairs} pairs; held out: {held}"
            f"{_refused(asdict(report.calibrated))}"
        )


def _replay(cfg: Any, log_file: Path, verifier: str | None, as_json: bool) -> None:
    """Ask a question log through the real query pipeline over an empty scratch cache (in a temporary folder,
    removed after): the user's answer cache is neither read nor written."""
    import tempfile

    from ragcli.eval.cache_eval import load_question_log, replay, replay_row, scratch_answer_cache
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages

    cfg = cfg.model_copy(
        update={
            "cache": cfg.cache.model_copy(
                update={"enabled": True, "verifier": verifier or cfg.cache.verifier}
            )
        }
    )
    log = load_question_log(log_file)
    with tempfile.TemporaryDirectory(prefix="ragcli-cache-replay-") as scratch:
        stages = Stages.from_config(cfg)
        cache = None
        try:
            cache = stages.given_answer_cache = scratch_answer_cache(cfg, stages.embedder, Path(scratch))
            report = replay(log, lambda question: replay_row(answer(question, stages, QueryOptions())))
        finally:
            used = "answer_cache" in stages.__dict__  # then `close` closes the scratch cache too
            stages.close()
            if cache is not None and not used:
                cache.close()
    if as_json:
        print_json(report)
        return
    out.print(
        f"{report.questions} questions: {report.llm_calls} LLM calls, {report.calls_avoided} avoided "
        f"({report.exact_hits} exact, {report.semantic_hits} semantic), {report.wrong_answers_served} wrong "
        f"answers served; spent ${report.usd_spent:.6f}, saved ${report.usd_saved:.6f}"
    )


# ---------------------------------------------------------------- cache ...


def _open(cfg: Any) -> Any:
    """The answer cache for maintenance (clear, optimize, invalidate): without its verifier, which these never
    use (so no `no cache verifier trained` warning where it does not matter)."""
    from ragcli.generation.cache_build import build_answer_cache
    from ragcli.ingest.build import build_embedder

    plain = cfg.model_copy(update={"cache": cfg.cache.model_copy(update={"semantic": "off"})})
    return build_answer_cache(plain, build_embedder(cfg.embedder, home=cfg.home_dir()))


@cache_app.command("calibrate")
def cache_calibrate(
    pairs: PairsOpt,
    verifier: VerifierOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int | None, typer.Option(min=10, help="Use the first N pairs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-choose the verifier's threshold on labeled pairs for cache.target_precision; writes it to its card."""
    from ragcli.generation.cache_verifier import resolve_verifier
    from ragcli.train.cache_verifier import calibrate_verifier

    with errors():
        cfg = load(config)
        folder = resolve_verifier(cfg.home_dir(), verifier or cfg.cache.verifier)
        card = calibrate_verifier(folder, pairs, target_precision=cfg.cache.target_precision, limit=limit)
        if as_json:
            print_json(card)
            return
        c = card["calibration"]
        out.print(
            f"verifier {folder.name}: threshold {_fmt_t(card['threshold'])} (precision {c['precision']:.3f}, "
            f"interval [{c['lower']:.3f}, {c['upper']:.3f}], hit rate {c['hit_rate']:.3f}, {c['pairs']} pairs)"
            f"{_refused(c)}"
        )


@cache_app.command("stats")
def cache_stats(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Entries, lookups, hits by tier and dollars saved."""
    from ragcli.generation.cache_build import open_cache_meta

    with errors():
        cfg = load(config)
        with open_cache_meta(cfg) as meta:
            s = meta.stats(time.time())
        if as_json:
            print_json(s)
            return
        rate = (s.exact_hits + s.semantic_hits) / s.lookups if s.lookups else 0.0
        out.print(
            f"{s.entries} entries ({s.expired} expired) in {s.scopes} scopes; {s.lookups} lookups, "
            f"{s.exact_hits} exact + {s.semantic_hits} semantic hits ({rate:.1%}); saved ${s.saved_usd:.6f}"
        )
        _say_verifier(cfg)


def _say_verifier(cfg: Any) -> None:
    """Warn, where it matters, that the semantic tier cannot serve: `cache.semantic: verifier` and none found."""
    from ragcli.errors import ResourceMissing
    from ragcli.generation.cache_verifier import resolve_verifier

    if cfg.cache.semantic != "verifier":
        return
    try:
        resolve_verifier(cfg.home_dir(), cfg.cache.verifier)
    except ResourceMissing as exc:
        err.print(
            f"[yellow]warning[/yellow]: the answer cache serves exact repeats only: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )


@cache_app.command("judged")
def cache_judged(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the judged hits as pairs JSONL (text_a, text_b, label)."),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision of the cache on your own traffic: the hits `ragcli feedback` judged, by tier; `--out` writes
    them as labeled pairs for `ragcli eval cache --pairs` and `ragcli train cache-verifier --pairs`."""
    import json

    from ragcli.generation.pair_features import normalise_question
    from ragcli.state.build import open_route_log

    with errors():
        cfg = load(config)
        log = open_route_log(cfg)
        try:
            pairs = log.judged_hits()
        finally:
            log.close()
        by_tier: dict[str, dict[str, int]] = {}
        for p in pairs:
            t = by_tier.setdefault(p["tier"] or "?", {"judged": 0, "good": 0})
            t["judged"] += 1
            t["good"] += p["label"]
        # a verdict on an exact repeat judges the answer, not the match: as a pair it would say that a question
        # differs from itself (label 0), or what no verifier needs to learn (label 1); the exact tier serves those
        labeled = [p for p in pairs if normalise_question(p["text_a"]) != normalise_question(p["text_b"])]
        skipped = len(pairs) - len(labeled)
        if out_file is not None:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(
                "".join(json.dumps({k: p[k] for k in ("text_a", "text_b", "label")}) + "\n" for p in labeled),
                encoding="utf-8",
            )
        if as_json:
            print_json(
                {
                    "tiers": by_tier,
                    "pairs": len(pairs),
                    "written": len(labeled) if out_file else None,
                    "skipped_exact_repeats": skipped,
                    "out": str(out_file) if out_file else None,
                }
            )
            return
        if not pairs:
            out.print(
                "no judged cache hits yet: `ragcli feedback QUERY_ID good|bad` on an answer served from the cache "
                "(its trace has a `cache` stage)"
            )
            return
        for tier, t in sorted(by_tier.items()):
            out.print(
                f"{tier}: {t['good']} of {t['judged']} judged hits good (precision {t['good'] / t['judged']:.3f})"
            )
        if out_file is not None:
            out.print(
                f"wrote {len(labeled)} labeled pairs to {out_file}"
                + (
                    f"; skipped {skipped} judged exact repeat(s) (the same question on both sides: the verdict "
                    "judged the answer, not whether the questions match)"
                    if skipped
                    else ""
                )
            )


@cache_app.command("list")
def cache_list(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest entries to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest cached answers."""
    from ragcli.generation.cache_build import open_cache_meta

    with errors():
        cfg = load(config)
        with open_cache_meta(cfg) as meta:
            entries = meta.entries(limit)
        rows = [
            {
                "id": e.id,
                "question": e.question,
                "answer": e.answer[:80],
                "model": e.model,
                "hits": e.hits,
                "saved_usd": e.saved_usd,
                "cited": len(e.cited),
                "collection": e.scope.collection,
                "tenant": e.scope.tenant,
                "filter": e.scope.filter,
            }
            for e in entries
        ]
        if as_json:
            print_json(rows)
            return
        table = Table(title=f"answer cache ({len(rows)} newest)")
        for col in ("question", "answer", "model", "hits", "cited"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(*(str(r[k]) for k in ("question", "answer", "model", "hits", "cited")))
        out.print(table)


@cache_app.command("clear")
def cache_clear(
    config: ConfigOpt = None, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Drop every cached answer."""
    with errors():
        cfg = load(config)
        if not yes and not typer.confirm("drop every cached answer?"):
            out.print("nothing dropped")  # declining is not an error (exit 1 means a backend failed)
            return
        cache = _open(cfg)
        try:
            n = cache.clear()
        finally:
            cache.close()
        out.print(f"dropped {n} cached answers")


@cache_app.command("optimize")
def cache_optimize(config: ConfigOpt = None) -> None:
    """Index the cached questions' vectors now (lookups at 100k entries: ~24 ms search before, ~2 ms after)."""
    with errors():
        cfg = load(config)
        cache = _open(cfg)
        t0 = time.perf_counter()
        try:
            cache.optimize()
        finally:
            cache.close()
        out.print(f"optimised the answer cache's index in {time.perf_counter() - t0:.1f}s")


@cache_app.command("invalidate")
def cache_invalidate(
    source: Annotated[
        str | None, typer.Option("--source", help="A file or folder: drop answers citing it.")
    ] = None,
    chunk: Annotated[list[str] | None, typer.Option("--chunk", help="A chunk id (repeatable).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Drop cached answers that cited a source file (or folder), or given chunks."""
    from ragcli.errors import InputError

    with errors():
        cfg = load(config)
        if not source and not chunk:
            raise InputError("give --source PATH or --chunk ID")
        cache = _open(cfg)
        try:
            by_source = by_chunk = 0
            if source:
                by_source += cache.invalidate_source(str(Path(source).expanduser().resolve()))
                by_source += cache.invalidate_source(source)
            if chunk:
                by_chunk = cache.invalidate(chunk_ids=chunk)
        finally:
            cache.close()
        if source and not by_source:
            path = Path(source).expanduser()
            exists = "exists" if path.exists() else "does not exist"
            err.print(
                f"[yellow]warning[/yellow]: no cached answer cites {escape(source)!r} (the path {exists}); "
                "give the file or folder as it was ingested",
                highlight=False,
                soft_wrap=True,
            )
        if chunk and not by_chunk:
            err.print(
                f"[yellow]warning[/yellow]: no cached answer cites the chunk(s) {escape(', '.join(chunk))}",
                highlight=False,
                soft_wrap=True,
            )
        out.print(f"dropped {by_source + by_chunk} cached answers")


__all__ = ["cache_app", "to_jsonable"]
