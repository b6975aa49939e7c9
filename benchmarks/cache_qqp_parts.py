"""The measurements of benchmarks/cache_qqp.py: verifiers and ablations, the pairs table, latency, replay, report."""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.eval.cache_pairs import LabeledPair, split_pairs
from ragcli.generation.cache_calibration import (
    NEVER,
    CurvePoint,
    best_at_precision,
    choose_threshold,
    measure_at,
    precision_curve,
)
from ragcli.generation.cache_verifier import CacheVerifier, head_logits, open_verifier, pair_matrix
from ragcli.ingest.protocols import Embeddings
from ragcli.types import Usage

TARGET = 0.95
DIM = 384
# columns of pair_matrix: u*v, |u-v|, cosine, then the handcrafted features
VARIANTS = {
    "MLP head on [u*v, |u-v|, cos] + features": (slice(0, None), 64),
    "MLP head on [u*v, |u-v|, cos], no features": (slice(0, 2 * DIM + 1), 64),
    "logistic regression on [u*v, |u-v|, cos] + features": (slice(0, None), 0),
    "logistic regression on cos + features": (slice(2 * DIM, None), 0),
}
CALL_USD = (1500 * 0.15 + 200 * 0.60) / 1e6
"""An assumed RAG call for the replay's dollars: 1,500 prompt + 200 output tokens at gpt-4o-mini's list price."""


class CachedEmbedder:
    """The packaged MiniLM's vectors through the benchmark's on-disk vector cache (same name, same vectors)."""

    def __init__(self, vc: Any) -> None:
        self.vc = vc

    model_name = "all-MiniLM-L6-v2"
    dim = DIM
    max_tokens = 256

    @property
    def tokenizer(self) -> Any:
        return self.vc.embedder.tokenizer

    def embed(self, texts: Sequence[str]) -> Embeddings:
        return Embeddings(self.vc.get(list(texts)).astype(np.float32), Usage())

    def embed_query(self, text: str) -> Embeddings:
        return self.embed([text])


def _xy(pairs: Sequence[LabeledPair], vc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = [p.text_a for p in pairs]
    b = [p.text_b for p in pairs]
    x = pair_matrix(vc.get(a), vc.get(b), a, b)
    return x, np.asarray([p.label for p in pairs]), x[:, 2 * DIM]


def _point(p: CurvePoint | None) -> dict[str, Any] | None:
    if p is None:
        return None
    d = asdict(p)
    d["threshold"] = None if not np.isfinite(p.threshold) else p.threshold
    return d


def shipped_name(args: Any) -> str:
    """The verifier the latency and replay parts use: the cross-encoder (the default kind) or the frozen head."""
    return "qqp-cross" if args.kind == "cross" else "qqp-frozen"


def train_verifiers(args: Any, tune: Sequence[LabeledPair], vc: Any, work: Path) -> dict[str, Any]:
    """Train the shipped recipe through `ragcli.train` (timed), plus the ablations on the same split."""
    from ragcli.train.cache_verifier import VerifierRecipe, train_cache_verifier, train_head

    rng = random.Random(args.seed)
    sub = rng.sample(list(tune), min(args.train_pairs, len(tune)))
    pairs_file = work / "tune_pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(asdict(p)) + "\n" for p in sub))
    home = work / "home"
    recipe = VerifierRecipe(kind="head", max_pairs=len(sub), epochs=0, seed=args.seed)
    vc.get([t for p in sub for t in (p.text_a, p.text_b)])  # embedding is timed apart from training
    t0 = time.perf_counter()
    card = train_cache_verifier(pairs_file, "qqp-frozen", home, recipe, embedder=CachedEmbedder(vc))
    out: dict[str, Any] = {
        "frozen": {
            "name": "qqp-frozen",
            "train_seconds_excluding_embedding": round(time.perf_counter() - t0, 1),
            "card": card,
        },
    }
    if args.kind == "cross":
        t0 = time.perf_counter()
        cross = VerifierRecipe(kind="cross", max_pairs=len(sub), epochs=args.cross_epochs, seed=args.seed)
        card = train_cache_verifier(
            pairs_file,
            "qqp-cross",
            home,
            cross,
            progress=lambda ph, d, t: (d % 50 == 0 or d == t) and print(f"  {ph} {d}/{t}", file=sys.stderr),
        )
        out["cross"] = {
            "name": "qqp-cross",
            "train_seconds_including_calibration": round(time.perf_counter() - t0, 1),
            "card": card,
        }
    out["shipped"] = out["cross" if args.kind == "cross" else "frozen"]
    # the same split train_cache_verifier made
    train, calib = split_pairs(sub, [1 - recipe.calib_fraction, recipe.calib_fraction], seed=recipe.seed)
    xt, yt, _ = _xy(train, vc)
    xc, yc, _ = _xy(calib, vc)
    heads = {}
    for label, (cols, hidden) in VARIANTS.items():
        t1 = time.perf_counter()
        head = train_head(xt[:, cols], yt, VerifierRecipe(hidden=hidden, seed=args.seed))
        cal = choose_threshold(1 / (1 + np.exp(-head_logits(head, xc[:, cols]))), yc, target_precision=TARGET)
        heads[label] = {
            "head": head,
            "cols": cols,
            "threshold": cal.threshold,
            "train_seconds": round(time.perf_counter() - t1, 1),
            "calibration": asdict(cal),
        }
    out["ablations"] = heads
    if args.finetune_epochs:
        t2 = time.perf_counter()
        ft = VerifierRecipe(kind="head", max_pairs=len(sub), epochs=args.finetune_epochs, seed=args.seed)
        out["finetuned"] = {
            "name": "qqp-finetuned",
            "card": train_cache_verifier(
                pairs_file,
                "qqp-finetuned",
                home,
                ft,
                progress=lambda ph, d, t: print(f"  {ph} {d}/{t}", file=sys.stderr),
            ),
            "train_seconds_including_embedding": round(time.perf_counter() - t2, 1),
        }
    cos_cal = choose_threshold(_xy(calib, vc)[2], yc, target_precision=TARGET)
    out["cosine_calibration"] = asdict(cos_cal)
    out["split"] = {"train": len(train), "calibration": len(calib)}
    return out


def pairs_table(
    args: Any,
    tune: Sequence[LabeledPair],
    report: Sequence[LabeledPair],
    vc: Any,
    work: Path,
    ver: dict[str, Any],
) -> dict[str, Any]:
    """Precision (with interval) and hit rate on the report pairs of every recipe, thresholds tuned beforehand."""
    x, y, cos = _xy(report, vc)
    rows: list[dict[str, Any]] = []
    verifier = CacheVerifier(work / "home" / "verifiers" / "qqp-frozen", embedder=CachedEmbedder(vc))  # type: ignore[arg-type]
    a = [p.text_a for p in report]
    b = [p.text_b for p in report]
    s_ver = verifier.score_vectors(a, b, vc.get(a), vc.get(b))
    rows.append(
        {
            "recipe": "verifier, frozen MiniLM + MLP head on [u*v, |u-v|, cos] + features, threshold from its card",
            **_point(measure_at(s_ver, y, verifier.threshold)),
        }
    )  # type: ignore[dict-item]
    if "cross" in ver:
        cv = open_verifier(work / "home" / "verifiers" / "qqp-cross")
        t0 = time.perf_counter()
        s_ver = cv.score(a, b)  # the shipped verifier's curve is printed below
        score_s = time.perf_counter() - t0
        rows.insert(
            0,
            {
                "recipe": f"verifier (shipped: MiniLM cross-encoder, {args.cross_epochs} epoch), threshold from its card",
                **_point(measure_at(s_ver, y, cv.threshold)),
            },  # type: ignore[dict-item]
        )
        ver["cross"]["report_scoring_ms_per_pair_both_orders"] = round(1000 * score_s / max(len(a), 1), 2)
    for label, h in ver["ablations"].items():
        s = 1 / (1 + np.exp(-head_logits(h["head"], x[:, h["cols"]])))
        rows.append({"recipe": f"ablation: {label}", **_point(measure_at(s, y, h["threshold"]))})  # type: ignore[dict-item]
    if "finetuned" in ver:
        fv = CacheVerifier(work / "home" / "verifiers" / "qqp-finetuned")
        s_ft = fv.score(a, b)
        rows.append(
            {
                "recipe": "verifier with fine-tuned encoder (1 epoch)",
                **_point(measure_at(s_ft, y, fv.threshold)),
            }
        )  # type: ignore[dict-item]
    cos_t = ver["cosine_calibration"]["threshold"]
    rows.append(
        {"recipe": "MiniLM cosine, threshold tuned like the verifier's", **_point(measure_at(cos, y, cos_t))}
    )  # type: ignore[dict-item]
    best = best_at_precision(cos, y, TARGET)
    rows.append(
        {
            "recipe": "MiniLM cosine at its best threshold on the report part (in-sample)",
            **(_point(best) or {"threshold": None, "hits": 0, "precision": None, "hit_rate": 0.0}),
        }
    )
    for t in (0.8, 0.9, 0.95):
        tag = " (GPTCache default similarity_threshold)" if t == 0.8 else ""
        rows.append({"recipe": f"cosine >= {t}{tag}", **_point(measure_at(cos, y, t))})  # type: ignore[dict-item]
    curve = [p for p in precision_curve(cos, y) if p.hits >= 50]
    max_cos = max(curve, key=lambda p: p.precision)
    return {
        "rows": rows,
        "max_cosine_precision": _point(max_cos),
        "verifier_curve": [_point(p) for p in precision_curve(s_ver, y, points=15)],
        "positives": int(y.sum()),
        "pairs": len(y),
    }


def latency(args: Any, report: Sequence[LabeledPair], vc: Any, work: Path) -> dict[str, Any]:
    """Lookup time with `args.entries` entries in one scope: real MiniLM embedding, search, metadata, verifier."""
    from ragcli.generation.answer_cache import CACHE_SOURCE, AnswerCache
    from ragcli.generation.cache_protocols import CacheEntry, CacheScope
    from ragcli.generation.pair_features import normalise_question
    from ragcli.generation.sqlite_cache_store import SqliteCacheStore
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
    from ragcli.types import Chunk

    folder = work / "latency"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    scope = CacheScope("bench", pipeline="p", model="m")
    dups = [p for p in report if p.label == 1]
    real = list(dict.fromkeys(p.text_a for p in dups))[: min(max(4 * args.lookups, 200), args.entries)]
    rng = np.random.default_rng(args.seed)
    filler = rng.standard_normal((args.entries - len(real), DIM)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    vecs = np.concatenate([vc.get(real), filler])
    texts = real + [f"filler question number {i}" for i in range(len(filler))]
    meta = SqliteCacheStore(folder / "cache.sqlite")
    index = QdrantEdgeStore(folder / "index", "answer_cache")
    index.ensure_collection(DIM, sparse=False, indexed_fields={})
    t0 = time.perf_counter()
    now = time.time()
    import uuid

    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(texts))]
    for start in range(0, len(texts), 2048):
        sl = slice(start, start + 2048)
        for i, t, v in zip(ids[sl], texts[sl], vecs[sl], strict=True):
            meta.put(
                CacheEntry(
                    i,
                    scope,
                    t,
                    normalise_question(t),
                    "cached answer",
                    [],
                    [],
                    "m",
                    Usage(),
                    now,
                    None,
                    vector=v,
                )
            )
        index.upsert(
            [
                Chunk(id=i, doc_id=scope.key, text=t, source=CACHE_SOURCE)
                for i, t in zip(ids[sl], texts[sl], strict=True)
            ],
            vecs[sl],
        )
    fill_s = time.perf_counter() - t0
    embedder = SentenceTransformerEmbedder()
    verifier = open_verifier(work / "home" / "verifiers" / shipped_name(args), embedder=embedder)
    cache = AnswerCache(meta, index, embedder, verifier=verifier, ttl_s=None)
    t0 = time.perf_counter()
    if not args.no_optimize:  # what AnswerCache.store does every OPTIMIZE_EVERY entries
        cache.optimize()
    optimize_s = time.perf_counter() - t0
    in_cache = set(real)
    asks = [p.text_b for p in dups if p.text_a in in_cache][: args.lookups]
    for q in asks[:5]:
        cache.lookup(q, scope)  # warm-up: model load, first search
    emb_s, rest_s, total_s, search_s = [], [], [], []
    hits = 0
    from ragcli.retrieval.filters import Condition
    from ragcli.retrieval.protocols import SearchRequest

    for q in asks:
        t1 = time.perf_counter()
        v = cache.embed(q)
        t2 = time.perf_counter()
        look = cache.lookup(q, scope, vector=v)
        t3 = time.perf_counter()
        index.search(SearchRequest(dense=v.tolist(), limit=5, filter=Condition("doc_id", "eq", scope.key)))
        t4 = time.perf_counter()
        emb_s.append(t2 - t1)
        rest_s.append(t3 - t2)
        total_s.append(t3 - t1)
        search_s.append(t4 - t3)
        hits += look.hit is not None
    cache.close()
    return {
        "entries": len(texts),
        "verifier": shipped_name(args),
        "real_entries": len(real),
        "fill_seconds": round(fill_s, 1),
        "optimize_seconds": None if args.no_optimize else round(optimize_s, 1),
        "lookups": len(asks),
        "hits": hits,
        "p50_ms": {
            "total": pct(total_s, 50),
            "embed": pct(emb_s, 50),
            "search+meta+verifier": pct(rest_s, 50),
            "search alone": pct(search_s, 50),
        },
        "p95_ms": {
            "total": pct(total_s, 95),
            "embed": pct(emb_s, 95),
            "search+meta+verifier": pct(rest_s, 95),
            "search alone": pct(search_s, 95),
        },
    }


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000.0, q)), 2)


def _groups(pairs: Sequence[LabeledPair]) -> dict[str, str]:
    """Duplicate groups: questions joined by any label-1 pair of the report part share a group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        find(p.text_a)
        find(p.text_b)
        if p.label == 1:
            parent[find(p.text_a)] = find(p.text_b)
    return {q: find(q) for q in parent}


def replay_run(
    args: Any,
    report: Sequence[LabeledPair],
    vc: Any,
    work: Path,
    verifier_at: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    """QQP questions asked twice in other words, mixed with new ones, through three caches; the third's verifier
    is the shipped one, or `verifier_at` (its label, its folder)."""
    from ragcli.eval.cache_eval import LoggedQuestion, replay
    from ragcli.generation.answer_cache import AnswerCache
    from ragcli.generation.cache_protocols import CacheScope
    from ragcli.generation.sqlite_cache_store import SqliteCacheStore
    from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

    rng = random.Random(args.seed + 1)
    groups = _groups(report)
    dups = rng.sample([p for p in report if p.label == 1], args.replay_groups)
    used = {t for p in dups for t in (p.text_a, p.text_b)}
    fresh = [t for p in report if p.label == 0 for t in (p.text_a, p.text_b) if t not in used]
    fresh = rng.sample(list(dict.fromkeys(fresh)), args.replay_groups)
    events: list[tuple[float, str]] = []
    for p in dups:
        first, second = sorted((rng.random(), rng.random()))
        events += [(first, p.text_a), (second, p.text_b)]
    events += [(rng.random(), t) for t in fresh]
    log = [LoggedQuestion(t, groups[t]) for _, t in sorted(events)]
    vc.get([q.question for q in log])
    scope = CacheScope("bench", pipeline="p", model="m")
    runs: dict[str, Any] = {}
    named, verifier_folder = verifier_at or (
        shipped_name(args),
        work / "home" / "verifiers" / shipped_name(args),
    )
    for label, kind in (
        ("no cache", None),
        ("cosine >= 0.9 (GPTCache-style)", "cosine"),
        (f"exact + verifier {named} (ragcli)", "verifier"),
    ):
        folder = work / "replay" / (kind or "none")
        shutil.rmtree(folder, ignore_errors=True)
        emb = CachedEmbedder(vc)
        verifier = (
            open_verifier(verifier_folder, embedder=emb)  # type: ignore[arg-type]
            if kind == "verifier"
            else None
        )
        cache = AnswerCache(
            SqliteCacheStore(folder / "c.sqlite"),
            QdrantEdgeStore(folder / "idx", "c"),
            emb,  # type: ignore[arg-type]
            verifier=verifier,
            cosine_threshold=0.9 if kind == "cosine" else None,
            ttl_s=None,
        )

        def ask(q: str, cache: AnswerCache = cache, kind: str | None = kind) -> dict[str, Any]:
            if kind is None:
                return {"llm_calls": 1, "usd": CALL_USD}
            look = cache.lookup(q, scope)
            if look.hit is not None:
                return {
                    "hit": look.hit.tier,
                    "cached_question": look.hit.entry.question,
                    "saved_usd": CALL_USD,
                }
            cache.store(q, scope, f"answer to: {q}", vector=look.vector)
            return {"llm_calls": 1, "usd": CALL_USD}

        rep = replay(log, ask)
        cache.close()
        runs[label] = asdict(rep)
    return {
        "questions": len(log),
        "asked_twice": len(dups),
        "new": len(fresh),
        "runs": runs,
        "usd_per_call_assumed": CALL_USD,
    }


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "never" if v == NEVER else f"{v:.{nd}f}"
    return str(v)


def markdown(r: dict[str, Any]) -> str:
    ver = r["verifiers"]
    card = ver["shipped"]["card"]
    lines = [
        "# Answer cache on QQP (issue 10)",
        "",
        f"- date {r['date']}, commit {r['commit']}, machine {r['machine']} (shared by ~8 engineers)",
        f"- command: `{r['command']}`",
        f"- load average before / after: {r['load_before']} / {r['load_after']}; whole run {r['seconds']} s",
        f"- QQP pairs (exact repeats removed): {r['pairs_total']}; split by connected component into tune "
        f"{r['tune_pairs']} / report; {r['report_pairs_used']} report pairs measured below",
        f"- verifiers trained on {ver['split']['train']} tune pairs, thresholds calibrated on {ver['split']['calibration']} "
        f"other tune pairs (lowest threshold whose precision's 95 % Wilson lower bound >= {TARGET}); frozen head: "
        f"{ver['frozen']['train_seconds_excluding_embedding']} s without embedding the pairs"
        + (
            f"; cross-encoder: {ver['cross']['train_seconds_including_calibration']} s with calibration, "
            f"{ver['cross'].get('report_scoring_ms_per_pair_both_orders')} ms per pair to score (both orders, "
            "batches of 64)"
            if "cross" in ver
            else ""
        ),
        "",
        "## Hit precision and hit rate on the report pairs (cache holds text_a, user asks text_b)",
        "",
        "| recipe | threshold | hits | precision | 95 % interval | hit rate |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in r["pairs"]["rows"]:
        lines.append(
            f"| {row['recipe']} | {_f(row.get('threshold'), 4)} | {row.get('hits', 0)} | {_f(row.get('precision'))} | "
            f"[{_f(row.get('lower'))}, {_f(row.get('upper'))}] | {_f(row.get('hit_rate'))} |"
        )
    mc = r["pairs"]["max_cosine_precision"]
    lines += [
        "",
        f"MiniLM cosine's highest precision at any threshold with >= 50 hits: {_f(mc['precision'])} "
        f"(threshold {_f(mc['threshold'], 4)}, hit rate {_f(mc['hit_rate'])}). Report pairs: {r['pairs']['pairs']}, "
        f"of which {r['pairs']['positives']} label 1. Card of the shipped verifier: threshold {_f(card['threshold'], 4)}, "
        f"calibration precision {_f(card['calibration']['precision'])} [{_f(card['calibration']['lower'])}, "
        f"{_f(card['calibration']['upper'])}].",
        "",
        f"Curve of the shipped verifier ({ver['shipped']['name']}) on the report pairs:",
        "",
        "| threshold | hits | precision | 95 % interval | hit rate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in r["pairs"]["verifier_curve"]:
        lines.append(
            f"| {_f(p['threshold'], 4)} | {p['hits']} | {_f(p['precision'])} | "
            f"[{_f(p['lower'])}, {_f(p['upper'])}] | {_f(p['hit_rate'])} |"
        )
    if "latency" in r:
        lines.append(latency_markdown(r["latency"]))
    rp = r["replay"]
    lines += [
        "",
        f"## Replay: {rp['questions']} questions ({rp['asked_twice']} asked twice in other words, {rp['new']} new), "
        "random order",
        "",
        "| cache | LLM calls | calls avoided | exact | semantic | wrong answers served | $ saved (assumed call) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, run in rp["runs"].items():
        lines.append(
            f"| {label} | {run['llm_calls']} | {run['calls_avoided']} | {run['exact_hits']} | "
            f"{run['semantic_hits']} | {run['wrong_answers_served']} | {run['usd_saved']:.4f} |"
        )
    lines += ["", f"Transfer: {r['transfer']}.", ""]
    return "\n".join(lines)


def latency_markdown(lat: dict[str, Any]) -> str:
    lines = [
        "",
        f"## Lookup latency, {lat['entries']} entries in one scope ({lat['real_entries']} real questions, the "
        "rest random unit vectors)",
        "",
    ]
    if "command" in lat:
        lines += [
            f"- {lat['date']}, commit {lat['commit']}, `{lat['command']}`, load average "
            f"{lat['load_before']} / {lat['load_after']}",
            "",
        ]
    lines += ["| part | p50 ms | p95 ms |", "| --- | --- | --- |"]
    for k in lat["p50_ms"]:
        lines.append(f"| {k} | {lat['p50_ms'][k]} | {lat['p95_ms'][k]} |")
    lines.append(
        f"\n{lat['lookups']} lookups of paraphrases, {lat['hits']} served; filling took {lat['fill_seconds']} s; "
        + (
            "index not optimised (--no-optimize).\n"
            if lat.get("optimize_seconds") is None
            else f"optimising the index (as the cache does every 1,000 entries) {lat['optimize_seconds']} s.\n"
        )
    )
    return "\n".join(lines)
