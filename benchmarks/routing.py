"""Routing benchmark: the learned router against random, prompt length and the per-subject prior on RouteLLM's
released outcomes (Mixtral-8x7B vs GPT-4 on GSM8K and MMLU).

For each seed the file is split (stratified by benchmark) into a training part (70 %: model picked by 3-fold
cross-validation inside it, then fitted on all of it with the threshold read from the same cross-validation's
out-of-fold predictions; `--calibration holdout`: fitted on 75 % of it, threshold calibrated on the other 25 %) and
a held-out part (30 %) that every number below is measured on. Several seeds give the spread of the held-out
numbers.

    .venv/bin/python benchmarks/routing.py --data ../shared/data --seeds 0 1 2 3 4 [--calibration holdout]
        [--lm-layer 8 [--lm-scale S]]

`--lm-layer N` also trains, on the same splits, the router that reads the local LM's view of each prompt (the
packaged SmolLM2's layer-N hidden states, `ragcli train router --lm-layer N`), its scale (or no view) picked by the
same cross-validation unless `--lm-scale` fixes it, and writes both side by side. The LM vectors are computed once
for the whole file (about 12 minutes on 2 cores) and cached with the embeddings.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BASELINES = ("router", "subject_prior", "length", "random")


def _mean_sd(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def _pct(xs: list[float | None]) -> str:
    vals = [x for x in xs if x is not None]
    if not vals:
        return "never"
    s = f"{100 * statistics.mean(vals):.1f}%"
    return s if len(vals) == len(xs) else s + f" ({len(xs) - len(vals)} never)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--target-share", type=float, default=0.5)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--calibration", choices=("cross-fit", "holdout"), default="cross-fit")
    ap.add_argument(
        "--no-gbm", action="store_true", help="Skip gradient boosting in the model selection (slow)."
    )
    ap.add_argument(
        "--models", default=None, help="Comma-separated candidates to cross-validate (default: all)."
    )
    ap.add_argument(
        "--cache", type=Path, default=None, help="Where to keep the prompt embeddings (default <home>/cache)."
    )
    ap.add_argument("--lm-layer", type=int, default=None, help="Also train routers that read this LM layer.")
    ap.add_argument(
        "--lm-scale", type=float, default=None, help="Fix the LM view's scale (default: CV pick)."
    )
    ap.add_argument(
        "--lm-latency",
        type=int,
        default=200,
        help="Time the LM view alone on this many prompts, one at a time.",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "routing.md")
    ap.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "routing.json")
    args = ap.parse_args()

    from ragcli.config import CostConfig
    from ragcli.cost.prices import PriceTable
    from ragcli.eval.router_eval import evaluate_router
    from ragcli.generation.lm_vectors import LMSpec, LMVectorizer
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.resources import cache_dir, offline_env
    from ragcli.train.router_outcomes import read_outcomes
    from ragcli.train.router_training import embed_prompts, lm_prompt_vectors

    offline_env()
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    path = args.data / "routing" / "outcomes.jsonl"
    outcomes = read_outcomes(path)
    embedder = SentenceTransformerEmbedder()
    cache = args.cache or cache_dir("cache")
    t0 = time.perf_counter()
    emb = embed_prompts(outcomes.prompts, embedder, cache)
    embed_s = time.perf_counter() - t0
    lm = None if args.lm_layer is None else LMSpec(layer=args.lm_layer, scale=args.lm_scale)
    lm_vectors = None if lm is None else lm_prompt_vectors(outcomes.prompts, LMVectorizer(lm), cache)
    lm_s = time.perf_counter() - t0 - embed_s
    prices = PriceTable.load(CostConfig.model_validate({"use_litellm_prices": False}))
    runs: list[dict[str, Any]] = []
    lm_runs: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    for seed in args.seeds:
        for view in (None, lm) if lm is not None else (None,):
            res = evaluate_router(
                outcomes,
                embedder,
                target={"strong_share": args.target_share},
                prices=prices,
                test_fraction=args.test_fraction,
                seed=seed,
                embeddings=emb,
                with_gbm=not args.no_gbm,
                candidates_only=args.models.split(",") if args.models else None,
                calibration=args.calibration,
                lm=view,
                lm_vectors=None if view is None else lm_vectors,
            )
            (runs if view is None else lm_runs).append(res)
            c = res["combined"]["routers"]
            g = res["benchmarks"].get("gsm8k", {}).get("routers", {})
            print(
                f"seed {seed}{'' if view is None else ' + LM view'}: model {res['model']}/{res['rule']} "
                f"combined {c['router']['apgr']:.3f} (prior {c['subject_prior']['apgr']:.3f}) "
                f"gsm8k {g.get('router', {}).get('apgr', float('nan')):.3f} "
                f"share {res['strong_share_reached']:.3f} lm {res['lm'] and res['lm']['scale']}",
                flush=True,
            )
    eval_s = time.perf_counter() - t1
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    args.json_out.write_text(
        json.dumps({"router": runs, "lm": lm_runs}, indent=1, default=float), encoding="utf-8"
    )
    write_markdown(args, runs, outcomes, embed_s, eval_s, load_start, load_end)
    if lm_runs:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(lm_section(args, runs, lm_runs, lm_s, lm_latency(lm, outcomes.prompts, args.lm_latency)))


def lm_latency(spec: Any, prompts: list[str], n: int) -> str:
    """What the LM view costs a query: a fresh load, then one prompt at a time (as `LearnedRouter.route` runs it)."""
    from ragcli.generation.lm_vectors import LMVectorizer

    if n <= 0:
        return "Query-time cost of the view: not measured in this run (--lm-latency 0)."
    t0 = time.perf_counter()
    lm = LMVectorizer(spec)
    lm.vectors(["warm up"])
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    times = []
    for i in rng.choice(len(prompts), size=min(n, len(prompts)), replace=False):
        t = time.perf_counter()
        lm.vectors([prompts[int(i)]])
        times.append(1000 * (time.perf_counter() - t))
    p50, p95 = np.percentile(times, [50, 95])
    return (
        f"Query-time cost of the view, {len(times)} prompts of the file one at a time: {p50:.0f} ms p50, "
        f"{p95:.0f} ms p95 (first {spec.layer} blocks, fp32); load {load_s:.1f} s once per process."
    )


def lm_section(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    lm_runs: list[dict[str, Any]],
    lm_s: float,
    latency: str,
) -> str:
    """The router with the LM view beside the router without it, on the same splits (held-out APGR)."""
    scopes = ["combined", *sorted(runs[0]["benchmarks"])]

    def apgr(rs: list[dict[str, Any]], scope: str) -> str:
        part = [r["combined"] if scope == "combined" else r["benchmarks"][scope] for r in rs]
        return _mean_sd([p["routers"]["router"]["apgr"] for p in part])

    scale = "picked by the same CV (or no view)" if args.lm_scale is None else f"fixed at {args.lm_scale:g}"
    lines = [
        "",
        f"## The local LM's view (SmolLM2 layer {args.lm_layer}, scale {scale}), side by side",
        "",
        f"LM vectors for every prompt of the file in {lm_s:.0f} s (0 when cached). Per seed: the model picked, and "
        "the LM view's scale when the router reads one. " + latency,
        "",
        "| router | "
        + " | ".join(scopes)
        + " | CPT(50 %) / CPT(80 %) combined | $ per 1k at 95 % | strong share reached | picked per seed |",
        "| --- | " + " | ".join("---:" for _ in scopes) + " | ---: | ---: | --- | --- |",
    ]
    for name, rs in (("MiniLM embedding + cheap features", runs), ("+ the LM view", lm_runs)):
        shares = ", ".join(f"{r['strong_share_reached']:.3f}" for r in rs)
        picks = "; ".join(
            f"{r['model']}/{r['rule']}" + ("" if r["lm"] is None else f" x{r['lm']['scale']:g}") for r in rs
        )
        best = [r["combined"]["routers"]["router"] for r in rs]
        cpt = f"{_pct([b['cpt50'] for b in best])} / {_pct([b['cpt80'] for b in best])}"
        usd = [b["usd_per_1k_at_95pct"] for b in best if b.get("usd_per_1k_at_95pct") is not None]
        dollars = f"${statistics.mean(usd):.2f}" if len(usd) == len(best) else "not always reached"
        lines.append(
            f"| {name} | "
            + " | ".join(apgr(rs, sc) for sc in scopes)
            + f" | {cpt} | {dollars} | {shares} | {picks} |"
        )
    cv = [r["lm_view_cv_apgr"] for r in lm_runs if r["lm_view_cv_apgr"]]
    if cv:
        lines += ["", "CV APGR inside the training part per LM scale (none = no view), per seed:", ""]
        lines += [
            f"- seed {s}: " + ", ".join(f"{k} {v:.3f}" for k, v in c.items())
            for s, c in zip(args.seeds, cv, strict=False)
        ]
    return "\n".join(lines) + "\n"


def write_markdown(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    outcomes: Any,
    embed_s: float,
    eval_s: float,
    load_start: list[str],
    load_end: list[str],
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    lines = [
        "# Routing: a learned router vs baselines on RouteLLM's outcomes",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit {commit}; machine {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, Python {platform.python_version()}",
        f"- command: `.venv/bin/python benchmarks/routing.py --seeds {' '.join(map(str, args.seeds))} "
        f"--target-share {args.target_share} --calibration {args.calibration}{' --no-gbm' if args.no_gbm else ''}"
        f"{' --models ' + args.models if args.models else ''}"
        f"{'' if args.lm_layer is None else f' --lm-layer {args.lm_layer}'}"
        f"{'' if args.lm_scale is None else f' --lm-scale {args.lm_scale:g}'}`",
        f"- load average at start {' '.join(load_start)}, at end {' '.join(load_end)}; embedding {len(outcomes)} prompts "
        f"{embed_s:.0f} s (0 when cached), train + evaluate {eval_s:.0f} s for {len(runs)} seeds",
        f"- data: `routing/outcomes.jsonl` ({len(outcomes)} prompts; tiers {outcomes.tiers[0]} -> {outcomes.tiers[-1]})",
        f"- protocol: per seed a stratified {100 * (1 - args.test_fraction):.0f}/{100 * args.test_fraction:.0f} split; "
        + (
            "the router is picked by 3-fold CV inside the training part, fitted on all of it, its threshold read "
            "from that CV's out-of-fold predictions; "
            if args.calibration == "cross-fit"
            else "the router is picked by 3-fold CV inside the training part, fitted on 75 % of it, calibrated on "
            "25 %; "
        )
        + "everything below is measured on the held-out part. Mean ± sd over seeds.",
        f"- dollars: {runs[0]['usd_source']}",
        "",
        "## APGR (higher is better; random = 0.5)",
        "",
        "| scope | n (held out) | router | subject prior | length | random |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    scopes = ["combined", *sorted(runs[0]["benchmarks"])]

    def rep(run: dict[str, Any], scope: str) -> dict[str, Any]:
        return run["combined"] if scope == "combined" else run["benchmarks"][scope]

    for scope in scopes:
        cells = [_mean_sd([rep(r, scope)["routers"][b]["apgr"] for r in runs]) for b in BASELINES]
        lines.append(f"| {scope} | {rep(runs[0], scope)['n']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## CPT: strong share needed for 50 % / 80 % of the quality gap (lower is better)",
        "",
        "| scope | router | subject prior | length | random |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scope in scopes:
        cells = [
            f"{_pct([rep(r, scope)['routers'][b]['cpt50'] for r in runs])} / "
            f"{_pct([rep(r, scope)['routers'][b]['cpt80'] for r in runs])}"
            for b in BASELINES
        ]
        lines.append(f"| {scope} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Dollars per 1,000 queries at 95 % of GPT-4's quality",
        "",
        "| scope | always strong | always weak | router | subject prior | length | random |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scope in scopes:
        cells = []
        for b in BASELINES:
            vals = [rep(r, scope)["routers"][b].get("usd_per_1k_at_95pct") for r in runs]
            ok = [v for v in vals if v is not None]
            cells.append(
                f"${statistics.mean(ok):.2f}"
                + ("" if len(ok) == len(vals) else f" ({len(vals) - len(ok)} never)")
                if ok
                else "never"
            )
        strong = statistics.mean(r["usd_per_1k_always_strong"] for r in runs) if scope == "combined" else None
        weak = statistics.mean(r["usd_per_1k_always_weak"] for r in runs) if scope == "combined" else None
        lines.append(
            f"| {scope} | {'-' if strong is None else f'${strong:.2f}'} | {'-' if weak is None else f'${weak:.2f}'} | "
            + " | ".join(cells)
            + " |"
        )
    shares = [r["strong_share_reached"] for r in runs]
    lines += [
        "",
        "## Calibration: strong share reached on the held-out part",
        "",
        f"Target {args.target_share:.2f} (calibrated on "
        + (
            "out-of-fold predictions"
            if args.calibration == "cross-fit"
            else "the training part's calibration slice"
        )
        + f"); reached "
        f"{_mean_sd(shares)} (per seed: {', '.join(f'{s:.3f}' for s in shares)}).",
        "",
        "## Model selection (3-fold CV APGR inside the training part, seed "
        f"{args.seeds[0]}; picked: {runs[0]['model']}/{runs[0]['rule']})",
        "",
        "| candidate / rule | combined | " + " | ".join(sorted(runs[0]["benchmarks"])) + " |",
        "| --- | --- | " + " | ".join("---" for _ in runs[0]["benchmarks"]) + " |",
    ]
    for name, sc in sorted(runs[0]["selection_cv_apgr"].items(), key=lambda kv: -kv[1]["combined"]):
        lines.append(
            f"| {name} | {sc['combined']:.3f} | "
            + " | ".join(f"{sc.get(b, float('nan')):.3f}" for b in sorted(runs[0]["benchmarks"]))
            + " |"
        )
    per_seed = [f"{r['model']}/{r['rule']}" for r in runs]
    picked = sorted(set(per_seed))
    lines += [
        "",
        f"Picked per seed: {', '.join(per_seed)} ({len(picked)} distinct).",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
