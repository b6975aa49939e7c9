"""How the learned router's held-out APGR grows with the number of labels it is trained on (RouteLLM's outcomes).

The same five 70/30 splits as `routing.py` (stratified by benchmark). Each router is trained, exactly as
`ragcli train router` trains it (candidates picked by 3-fold CV, threshold cross-fitted to a 0.5 strong share, no
gradient boosting), on a nested share of the training part (25 %, 50 %, 75 %, all of it), and read on the same
held-out 30 %. A K-fold pass (default 10: 90 % of the file to train on, every prompt read once) adds the largest
size the file allows. A line APGR = a + b ln(labels), fitted to the means, says how many labels the goal (combined
0.72) would take if the trend held; it is an extrapolation, not a measurement.

    .venv/bin/python benchmarks/routing_label_curve.py [--data ../shared/data] [--seeds 0 1 2 3 4]
        [--fractions 0.25 0.5 0.75 1] [--folds 10] [--lm-layer 8] [--views none lm]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCOPES = ("combined", "gsm8k", "mmlu")
GOAL = 0.72


def _apgr(res: dict[str, Any], scope: str, name: str) -> float:
    block = res["combined"] if scope == "combined" else res["benchmarks"][scope]
    return float(block["routers"][name]["apgr"])


def _line(ns: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a, b of y = a + b ln n."""
    x = np.log(np.asarray(ns, dtype=float))
    b, a = np.polyfit(x, np.asarray(ys, dtype=float), 1)
    return float(a), float(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[0, 1, 2, 3, 4],
        help="The 70/30 splits (none: only the K-fold pass).",
    )
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--folds", type=int, default=10, help="K of the K-fold pass (0: skip it).")
    ap.add_argument("--lm-layer", type=int, default=8)
    ap.add_argument("--views", nargs="+", choices=("none", "lm"), default=["none", "lm"])
    ap.add_argument(
        "--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "routing_label_curve.json"
    )
    ap.add_argument(
        "--report-from",
        type=Path,
        nargs="+",
        default=None,
        help="Only print the report of these JSON outputs together (runs split across processes).",
    )
    args = ap.parse_args()
    if args.report_from:
        runs = [json.loads(p.read_text(encoding="utf-8")) for p in args.report_from]
        print(report(runs[0]["meta"], [r for run in runs for r in run["rows"]]))
        return

    from ragcli.config import CostConfig
    from ragcli.cost.prices import PriceTable
    from ragcli.eval.router_eval import evaluate_router
    from ragcli.generation.lm_vectors import LMSpec, LMVectorizer
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.resources import cache_dir, offline_env
    from ragcli.train.router_outcomes import read_outcomes, split_indices
    from ragcli.train.router_training import embed_prompts, lm_prompt_vectors

    offline_env()
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    outcomes = read_outcomes(args.data / "routing" / "outcomes.jsonl")
    embedder = SentenceTransformerEmbedder()
    cache = cache_dir("cache")
    emb = embed_prompts(outcomes.prompts, embedder, cache)
    spec = LMSpec(layer=args.lm_layer)
    lm_vectors = (
        lm_prompt_vectors(outcomes.prompts, LMVectorizer(spec), cache) if "lm" in args.views else None
    )
    prices = PriceTable.load(CostConfig.model_validate({"use_litellm_prices": False}))

    def run(train: np.ndarray, test: np.ndarray, seed: int, view: str) -> dict[str, Any]:
        t = time.perf_counter()
        res = evaluate_router(
            outcomes,
            embedder,
            target={"strong_share": 0.5},
            prices=prices,
            seed=seed,
            embeddings=emb,
            with_gbm=False,
            lm=spec if view == "lm" else None,
            lm_vectors=lm_vectors if view == "lm" else None,
            split=(train, test),
        )
        row = {
            "seed": seed,
            "view": view,
            "labels": int(train.size),
            "held_out": int(test.size),
            "model": res["model"],
            "lm_scale": res["lm"] and res["lm"].get("scale"),
            "strong_share_reached": res["strong_share_reached"],
            "seconds": time.perf_counter() - t,
        }
        for scope in SCOPES:
            for name in ("router", "subject_prior", "length"):
                row[f"{scope}/{name}"] = _apgr(res, scope, name)
        print(
            f"{view:4s} seed {seed} labels {row['labels']:5d}: combined {row['combined/router']:.3f} "
            f"gsm8k {row['gsm8k/router']:.3f} prior {row['combined/subject_prior']:.3f} "
            f"({row['model']}, scale {row['lm_scale']}, {row['seconds']:.0f} s)",
            flush=True,
        )
        return row

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        train_idx, test_idx = split_indices(outcomes, [0.7, 0.3], seed)
        train_o = outcomes.subset(train_idx)
        for frac in sorted(args.fractions):
            local = (
                split_indices(train_o, [frac, 1.0 - frac], seed)[0] if frac < 1 else np.arange(len(train_idx))
            )
            for view in args.views:
                rows.append({**run(train_idx[local], test_idx, seed, view), "protocol": f"70/30 x {frac:g}"})
    if args.folds > 1:
        parts = split_indices(outcomes, [1.0 / args.folds] * args.folds, 0)
        for k, test in enumerate(parts):
            train = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k]))
            for view in args.views:
                rows.append({**run(train, test, k, view), "protocol": f"{args.folds}-fold"})
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "load_start": load_start,
        "load_end": load_end,
        "seconds": time.perf_counter() - t0,
        "lm_layer": args.lm_layer,
        "file_prompts": len(outcomes),
    }
    args.json_out.write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1, default=float), encoding="utf-8"
    )
    print(report(meta, rows))


def report(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A markdown table of mean ± sd per protocol and view, and the log-linear trend toward the goal."""
    out = [
        f"- date {meta['date']}; commit {meta['commit']}; {meta['machine']}; load {' '.join(meta['load_start'])} -> "
        f"{' '.join(meta['load_end'])}; {meta['seconds']:.0f} s",
        "",
        "| view | protocol | labels | held out | combined | GSM8K | MMLU | subject prior (combined) | strong share |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["view"], r["protocol"]), []).append(r)

    def ms(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"

    trend: dict[str, list[tuple[float, float]]] = {}
    for (view, proto), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], statistics.mean(r["labels"] for r in kv[1]))
    ):
        n = statistics.mean(r["labels"] for r in rs)
        out.append(
            f"| {view} | {proto} | {n:,.0f} | {statistics.mean(r['held_out'] for r in rs):,.0f} | "
            f"{ms([r['combined/router'] for r in rs])} | {ms([r['gsm8k/router'] for r in rs])} | "
            f"{ms([r['mmlu/router'] for r in rs])} | {ms([r['combined/subject_prior'] for r in rs])} | "
            f"{ms([r['strong_share_reached'] for r in rs])} |"
        )
        trend.setdefault(view, []).append((n, statistics.mean(r["combined/router"] for r in rs)))
    out.append("")
    for view, pts in trend.items():
        if len(pts) < 2:
            continue
        a, b = _line([p[0] for p in pts], [p[1] for p in pts])
        need = math.exp((GOAL - a) / b) if b > 0 else float("inf")
        out.append(
            f"- {view}: combined APGR = {a:.3f} + {b:.4f} ln(labels) over {len(pts)} sizes; "
            f"{GOAL} at about {need:,.0f} labels if the trend held (the file has {meta['file_prompts']:,})."
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
