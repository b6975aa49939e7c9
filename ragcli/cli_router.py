"""`ragcli train router`, `ragcli eval router`, `ragcli router report|labels` and `ragcli feedback`: thin wrappers
over `ragcli.train.router_training`, `ragcli.eval.router_eval` and `ragcli.generation.route_log`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ragcli.cli_eval import eval_app, train_app
from ragcli.cli_support import ConfigOpt, JsonOpt, errors, load, out, print_json, warn
from ragcli.errors import InputError

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig
    from ragcli.cost.prices import PriceTable
    from ragcli.generation.lm_vectors import LMSpec
    from ragcli.train.router_outcomes import Outcomes

router_app = typer.Typer(help="Inspect trained routers and export routing labels.", no_args_is_help=True)

OutcomesOpt = Annotated[
    Path,
    typer.Option(
        "--outcomes", help="JSONL of routing outcomes (ragcli's format or RouteLLM's released outcomes)."
    ),
]
TiersOpt = Annotated[
    str | None,
    typer.Option("--tiers", help="Tier names, cheapest first, comma-separated (default: file order)."),
]
ShareOpt = Annotated[
    float | None,
    typer.Option(
        "--target-share", min=0.0, max=1.0, help="Calibrate to this share of calls past the cheapest tier."
    ),
]
FloorOpt = Annotated[
    float | None,
    typer.Option(
        "--quality-floor",
        min=0.0,
        max=1.5,
        help="Calibrate to this fraction of the strongest tier's quality.",
    ),
]


def _target(share: float | None, floor: float | None, cfg: PipelineConfig | None = None) -> dict[str, float]:
    from ragcli.errors import InputError

    if share is not None and floor is not None:
        raise InputError("give --target-share or --quality-floor, not both")
    if share is not None:
        return {"strong_share": share}
    if floor is not None:
        return {"quality_floor": floor}
    router_cfg = getattr(cfg, "router", None) if cfg is not None else None
    target = getattr(router_cfg, "target", None)
    if target is not None:
        return {k: float(v) for k, v in target.model_dump(exclude_none=True).items()}
    return {"strong_share": 0.5}


def _tier_prices(
    outcomes: Outcomes, prices: PriceTable, output_tokens: int = 200
) -> list[dict[str, Any] | None]:
    from ragcli.eval.router_eval import per_query_usd

    usd, _ = per_query_usd(outcomes, prices, output_tokens)
    rows: list[dict[str, Any] | None] = []
    for t, tier in enumerate(outcomes.tiers):
        p = prices.price(tier)
        rows.append(
            {
                "model": tier,
                "input": None if p is None else p.input,
                "output": None if p is None else p.output,
                "usd_per_query": None if p is None else float(usd[:, t].mean()),
            }
        )
    return rows


CalibrationOpt = Annotated[
    str,
    typer.Option(
        "--calibration",
        help="cross-fit: fit on every label, threshold from out-of-fold predictions; holdout: fit on 75 %, "
        "calibrate on 25 %.",
    ),
]


LMLayerOpt = Annotated[
    int | None,
    typer.Option(
        "--lm-layer",
        min=1,
        help="Also read the local LM's view of each prompt: its hidden states after this many blocks, averaged "
        "(8 measured best for the packaged SmolLM2; runs the LM over every prompt, at training and per query; "
        "measured to help with thousands of labels, not with hundreds).",
    ),
]
LMScaleOpt = Annotated[
    float | None,
    typer.Option(
        "--lm-scale",
        min=0.0,
        help="The LM view's weight beside the embedding (default: picked by cross-validation, or no view).",
    ),
]


def _lm_spec(layer: int | None, scale: float | None) -> LMSpec | None:
    from ragcli.generation.lm_vectors import LMSpec

    if layer is None:
        if scale is not None:
            raise InputError("--lm-scale weighs the LM view: give --lm-layer too")
        return None
    return LMSpec(layer=layer, scale=scale)


def _load_outcomes(path: Path, tiers: str | None) -> Outcomes:
    from ragcli.train.router_outcomes import read_outcomes

    return read_outcomes(path, [t.strip() for t in tiers.split(",")] if tiers else None)


@train_app.command("router")
def train_router_cmd(
    outcomes: OutcomesOpt,
    name: Annotated[str, typer.Option("--name", help="The router's name (folder under <home>/routers).")],
    tiers: TiersOpt = None,
    target_share: ShareOpt = None,
    quality_floor: FloorOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Force a candidate model (default: picked by CV).")
    ] = None,
    calibration: CalibrationOpt = "cross-fit",
    lm_layer: LMLayerOpt = None,
    lm_scale: LMScaleOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a router on outcome labels: per tier P(good answer), threshold calibrated on predictions for labels
    the model did not see (out of fold, or a held-out part)."""
    from ragcli.cost.prices import PriceTable
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.resources import cache_dir
    from ragcli.train.router_training import save_router, train_router

    with errors():
        cfg = load(config)
        data = _load_outcomes(outcomes, tiers)
        prices = PriceTable.load(cfg.cost)
        trained = train_router(
            data,
            SentenceTransformerEmbedder(),
            name=name,
            target=_target(target_share, quality_floor, cfg),
            tier_prices=_tier_prices(data, prices),
            model=model,
            calibration=calibration,
            cache=cache_dir("cache"),
            lm=_lm_spec(lm_layer, lm_scale),
        )
        folder = save_router(trained, cfg.home_dir())
        card = trained.card
        if as_json:
            print_json({"folder": str(folder), **{k: v for k, v in card.items() if k != "features"}})
            return
        how = (
            "all fit, threshold from out-of-fold predictions"
            if card["calibration"] == "cross-fit"
            else f"{card['labels_fit']} fit, {card['labels_calibration']} calibration"
        )
        out.print(
            f"trained router {name!r} on {card['labels']} labels ({how}): model {card['model_name']}, "
            f"rule {card['rule']}, threshold {card['threshold']:.4f} for {card['target']}; saved in {folder}"
        )
        out.print(
            f"calibration APGR: {', '.join(f'{k} {v:.3f}' for k, v in card['calibration_apgr'].items())}"
        )
        if card["lm_view_cv_apgr"] or card["lm"]:
            out.print(f"LM view: {_lm_line(card)}")


def _lm_line(card: dict[str, Any]) -> str:
    lm, cv = card.get("lm"), card.get("lm_view_cv_apgr") or {}
    picked = "none" if not lm else f"layer {lm['layer']} of {lm['model']}, scale {lm['scale']:g}"
    tried = f" (CV APGR by scale: {', '.join(f'{k} {v:.3f}' for k, v in cv.items())})" if cv else ""
    return picked + tried


@eval_app.command("router")
def eval_router_cmd(
    outcomes: OutcomesOpt,
    router: Annotated[
        str | None,
        typer.Option("--router", help="A trained router (default: train one on part of the file)."),
    ] = None,
    tiers: TiersOpt = None,
    target_share: ShareOpt = None,
    quality_floor: FloorOpt = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.05, max=0.9)] = 0.3,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    calibration: CalibrationOpt = "cross-fit",
    lm_layer: LMLayerOpt = None,
    lm_scale: LMScaleOpt = None,
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=0, help="Assumed answer length for $.")
    ] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """APGR, CPT(50 %), CPT(80 %) and $ per 1,000 queries at 95 % of the strong model's quality, beside random,
    prompt length and the per-subject prior, per benchmark and combined."""
    from ragcli.cost.prices import PriceTable
    from ragcli.eval.router_eval import evaluate_router, summary_rows
    from ragcli.generation.learned_router import LearnedRouter
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.resources import cache_dir

    with errors():
        cfg = load(config)
        lm = _lm_spec(lm_layer, lm_scale)
        if lm is not None and router:
            raise InputError(
                "--lm-layer is for the router trained here; a trained router reads what its card says"
            )
        data = _load_outcomes(outcomes, tiers)
        embedder = SentenceTransformerEmbedder()
        target = _target(target_share, quality_floor, cfg)
        trained = (
            LearnedRouter.load(
                router,
                cfg.home_dir(),
                embedder=embedder,
                target=target if (target_share or quality_floor) else None,
            )
            if router
            else None
        )
        in_sample = trained is not None and _same_file(trained.card.get("source"), outcomes)
        if in_sample:
            warn(
                f"router {router!r} was trained on {outcomes}: scored on its own labels, the numbers are "
                "optimistic; give held-out outcomes, or leave out --router to train on one part and score the rest"
            )
        result = evaluate_router(
            data,
            embedder,
            router=trained,
            target=target,
            prices=PriceTable.load(cfg.cost),
            test_fraction=test_fraction,
            seed=seed,
            output_tokens=output_tokens,
            cache=cache_dir("cache"),
            calibration=calibration,
            lm=lm,
        )
        if as_json:
            print_json({**result, "in_sample": in_sample})
            return
        table = Table(title=f"router eval: {result['mode']}" + (" (in-sample)" if in_sample else ""))
        for col in ("scope", "router", "n", "APGR", "CPT(50%)", "CPT(80%)", "$/1k at 95%"):
            table.add_column(col)
        for row in summary_rows(result):
            table.add_row(*row)
        out.print(table)
        if result["lm"] or result["lm_view_cv_apgr"]:
            out.print(f"LM view: {_lm_line(result)}")
        out.print(
            f"strong share reached {result['strong_share_reached']:.3f} for target {result['target']}; "
            f"always strong ${result.get('usd_per_1k_always_strong', float('nan')):.2f} per 1,000 queries"
        )


def _current_tiers(cfg: PipelineConfig) -> list[Any]:
    tiers = getattr(cfg, "tiers", None)
    return list(tiers) if tiers else [cfg.llm]


def router_report(cfg: PipelineConfig, name: str) -> dict[str, Any]:
    """When a router was trained, on what, and whether the config's tiers and today's prices still match."""
    from ragcli.cost.prices import PriceTable
    from ragcli.generation.learned_router import LearnedRouter

    r = LearnedRouter.load(name, cfg.home_dir())
    prices = PriceTable.load(cfg.cost)
    card_tiers = r.card["tiers"]
    current = [getattr(t, "model", t.type) for t in _current_tiers(cfg)]
    problems: list[str] = []
    if [t["name"] for t in card_tiers] != current:
        problems.append(
            f"tiers changed: trained on {[t['name'] for t in card_tiers]}, the config has {current}"
        )
    for t in card_tiers:
        p = prices.price(t["name"])
        then = (t.get("input"), t.get("output"))
        now = (None, None) if p is None else (p.input, p.output)
        if then != now:
            problems.append(
                f"price of {t['name']} changed: {then} at training, {now} now ($ per million in, out)"
            )
    return {
        "name": name,
        "folder": str(r.folder),
        "trained_at": r.card["trained_at"],
        "labels": r.card["labels"],
        "source": r.card["source"],
        "model": r.card.get("model_name"),
        "rule": r.rule,
        "target": r.card.get("target"),
        "threshold": r.threshold,
        # routers trained before 2026-12-04 calibrated on a held-out slice and say nothing
        "calibration": r.card.get("calibration", "holdout"),
        "lm": r.card.get("lm"),
        "tiers": card_tiers,
        "current_tiers": current,
        "matches": not problems,
        "problems": problems,
    }


@router_app.command("report")
def report_cmd(
    name: Annotated[
        str | None, typer.Argument(help="The router (default: the config's router.model).")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Say when a router was trained, on how many labels, and whether the tier list and prices still match."""
    from ragcli.errors import InputError

    with errors():
        cfg = load(config)
        router_cfg = getattr(cfg, "router", None)
        name = name or getattr(router_cfg, "model", None)
        if not name:
            raise InputError("name a router (`ragcli router report NAME`) or set router.model in the config")
        rep = router_report(cfg, name)
        if as_json:
            print_json(rep)
            return
        out.print(
            f"router {rep['name']!r} trained {rep['trained_at']} on {rep['labels']} labels from {rep['source']}"
        )
        out.print(
            f"model {rep['model']}, rule {rep['rule']}, threshold {rep['threshold']:.4f} for {rep['target']} "
            f"({'out-of-fold predictions' if rep['calibration'] == 'cross-fit' else 'a held-out slice'})"
        )
        if rep["lm"]:
            out.print(f"reads the local LM's view: {_lm_line(rep)}")
        out.print("tiers and prices match the config" if rep["matches"] else "[yellow]retrain:[/yellow]")
        for p in rep["problems"]:
            out.print(f"  - {p}")


@router_app.command("labels")
def labels_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="Outcomes JSONL to write.")],
    judge_tier: Annotated[
        int | None,
        typer.Option(
            "--judge-tier",
            min=0,
            help="First grade the answers that have no verdict with this tier's model (0 = the first tier); "
            "each judge call draws on the budget and is in the ledger, and a person's later verdict wins.",
        ),
    ] = None,
    judge_limit: Annotated[
        int, typer.Option("--judge-limit", min=1, help="Judge at most this many answers in this run.")
    ] = 200,
    config: ConfigOpt = None,
) -> None:
    """Export routed queries that have feedback as outcomes for `ragcli train router`."""
    from ragcli.state.build import open_route_log

    with errors():
        cfg = load(config)
        if judge_tier is not None:
            _judge(cfg, judge_tier, judge_limit)
        log = open_route_log(cfg)
        try:
            n = log.write_labels(out_file)
        finally:
            log.close()
        out.print(f"wrote {n} labelled queries to {out_file}")


def _judge(cfg: PipelineConfig, tier: int, limit: int) -> None:
    """`router labels --judge-tier`: grade the answers without a verdict with one tier's model."""
    from ragcli.generation.answer_judge import judge_answers
    from ragcli.pipelines.query_pipeline import metered_call
    from ragcli.pipelines.stages import Stages

    stages = Stages.from_config(cfg)
    try:
        tiers = stages.tiers
        if tier >= len(tiers):
            raise InputError(
                f"--judge-tier {tier}: the config has {len(tiers)} tier(s), numbered 0 to {len(tiers) - 1}"
            )
        judge = tiers[tier]
        rep = judge_answers(
            stages.route_log,
            judge,
            metered_call(stages, judge, "judge", hidden=False),
            stages.store.get_chunks,
            collection=cfg.collection,
            limit=limit,
        )
    finally:
        stages.close()
    out.print(
        f"judged {rep.judged} answer(s) with {rep.model}: {rep.good} good, {rep.bad} bad, "
        f"{rep.unreadable} unreadable (no verdict stored); ${rep.usd:.4f}"
    )


def feedback(
    query_id: Annotated[str, typer.Argument(help="The query id (printed in the answer's trace).")],
    verdict: Annotated[str, typer.Argument(help="good or bad")],
    relevant: Annotated[
        str | None,
        typer.Option("--relevant", help="Sources [n] that bear on the question, e.g. 1,3."),
    ] = None,
    irrelevant: Annotated[
        str | None, typer.Option("--irrelevant", help="Sources [n] that do not, e.g. 2.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Record whether an answer was good, and which of its sources bore on the question: labels for training a
    router (`ragcli router labels`) and a reranker, embedder or fusion (`ragcli train ... --from-feedback`)."""
    from ragcli.state.build import open_route_log

    with errors():
        cfg = load(config)
        good, bad = _source_numbers(relevant, "--relevant"), _source_numbers(irrelevant, "--irrelevant")
        verdict = verdict.strip().lower()
        log = open_route_log(cfg)
        try:
            log.add_feedback(query_id, verdict, relevant=good, irrelevant=bad)
            entries = log.cache_entries_of(query_id) if verdict == "bad" else []
        finally:
            log.close()
        judged = f" (sources relevant: {good or '-'}, not relevant: {bad or '-'})" if good or bad else ""
        out.print(f"recorded {verdict} for query {query_id}{judged}")
        if entries:
            dropped = drop_cached_answers(cfg, entries)
            if dropped:
                out.print(
                    f"dropped {dropped} answer-cache entr{'y' if dropped == 1 else 'ies'} holding that answer"
                )


def drop_cached_answers(cfg: PipelineConfig, ids: list[str]) -> int:
    """A bad verdict drops the cache entries the answer was written to or served from: better a miss than the
    same wrong answer again. Only the metadata goes (its vector, if any, then matches nothing), so this works
    while a gateway holds the cache's collection open."""
    from ragcli.generation.cache_build import existing_cache_meta

    meta = existing_cache_meta(cfg) if ids else None
    if meta is None:
        return 0
    with meta:
        return len(meta.delete_ids(ids))


def _source_numbers(raw: str | None, flag: str) -> list[int]:
    """`1,3` -> [1, 3]; the numbers of an answer's [n] markers."""
    if raw is None:
        return []
    try:
        numbers = [int(p) for p in raw.replace(" ", "").split(",") if p]
    except ValueError:
        raise InputError(
            f"{flag} takes source numbers as printed in the answer, e.g. 1,3; got {raw!r}"
        ) from None
    if not numbers or min(numbers) < 1:
        raise InputError(f"{flag} takes source numbers from 1 up, e.g. 1,3; got {raw!r}")
    return numbers


def query_batch(
    question: str | None,
    batch: Path | None,
    out_file: Path | None,
    config: str | None,
    collection: str | None,
    poll_s: float = 30.0,
    as_json: bool = False,
    *,
    where: str | None = None,
    model: str | None = None,
    budget_tokens: int | None = None,
    refused: dict[str, bool] | None = None,
) -> None:
    """`ragcli query --batch questions.jsonl --out answers.jsonl`: see `ragcli.pipelines.batch_pipeline`.

    `--where` is the filter of the lines without their own, `--model` and `--budget-tokens` apply to every
    line; `--no-cache` holds as it is (a batch neither reads nor writes the answer cache). The flags named in
    `refused` (given: True) have no meaning for a batch and are refused rather than ignored.
    """
    from rich.markup import escape

    from ragcli.cli_support import EXIT_PARTIAL, err
    from ragcli.pipelines.batch_pipeline import run_batch
    from ragcli.pipelines.stages import Stages

    with errors():
        if batch is None:
            raise InputError(
                'give a question (ragcli query "What is X?") or --batch questions.jsonl --out FILE'
            )
        if question is not None:
            raise InputError("give either a question or --batch FILE, not both")
        if out_file is None:
            raise InputError(
                "--batch needs --out answers.jsonl (the state file goes beside it, for resuming)"
            )
        given = [flag for flag, on in (refused or {}).items() if on]
        if given:
            raise InputError(
                f"{', '.join(given)} cannot be used with --batch (each line's prompt and answer are in the "
                "answers file); drop it"
            )
        stages = Stages.from_config(load(config, collection, llm_model=model))
        try:
            report = run_batch(
                batch, out_file, stages, where=where, budget_tokens=budget_tokens, poll_s=poll_s
            )
        finally:
            stages.close()
        if as_json:
            print_json(report)
        else:
            out.print(
                f"answered {report.answered}, failed {report.failed}, still in a provider batch "
                f"{report.pending} -> {report.out}"
                + (f" (batches {', '.join(report.batches)})" if report.batches else "")
            )
            if report.pending:
                out.print("run the same command again to collect the rest (nothing is submitted twice)")
        for problem in report.invalid:
            err.print(f"[red]invalid[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        if report.invalid:
            err.print(
                f"{len(report.invalid)} bad line(s) written as status invalid; fix them and run the same "
                "command again (only the fixed lines are asked)",
                highlight=False,
            )
            raise typer.Exit(EXIT_PARTIAL)


def _same_file(source: object, path: Path) -> bool:
    """Whether a router card's `source` (the outcomes file it was trained on) is `path`."""
    if not isinstance(source, str) or not source:
        return False
    try:
        return Path(source).resolve() == path.resolve()
    except OSError:
        return False
