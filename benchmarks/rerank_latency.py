"""Rerank latency for 20 candidates per query, per backend (torch fp32 and int8, ONNX Runtime fp32 and int8),
side by side, and how well each backend keeps the fp32 scores (Spearman per query, top-5 overlap).

    nice -n 10 .venv/bin/python benchmarks/rerank_latency.py --model DIR [--queries 30] [--max-length 128]

Candidates: SciFact test queries with 20 documents each (the first 20 of a seeded shuffle of the corpus mixed
with the query's judged documents: latency depends on lengths, not on relevance). Backends run interleaved
query by query, after one warm-up query each, so load changes hit them alike. Writes the `latency` section (`latency-L<N>` for another --max-length) of
benchmarks/results/retrieval_trained.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, loadavg, machine, replace_section  # noqa: E402


def spearman(a: list[float], b: list[float]) -> float:
    import numpy as np

    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--model", required=True, help="cross-encoder folder")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--backends", nargs="*", default=["torch", "int8", "onnx", "onnx_int8"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval_trained.md"))
    args = ap.parse_args()
    from ragcli.resources import offline_env

    offline_env()
    import torch

    from ragcli.eval.beir import load_corpus, load_qrels, load_queries
    from ragcli.eval.metrics import percentile
    from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker

    t_start, load0 = time.time(), loadavg()
    src = Path(args.data) / "scifact_beir"
    corpus, qtext = load_corpus(src / "corpus.jsonl"), load_queries(src / "queries.jsonl")
    test = load_qrels(src / "qrels" / "test.tsv")
    rng = random.Random(0)
    ids = list(corpus)
    qids = sorted(q for q in test if q in qtext)[: args.queries]
    cands = {q: [corpus[d].full_text for d in (list(test[q]) + rng.sample(ids, 20))[:20]] for q in qids}
    rerankers = {}
    for b in args.backends:
        try:
            rr = CrossEncoderReranker(args.model, backend=b, max_length=args.max_length, batch_size=20)
            rr.load()
            rr.score(qtext[qids[0]], cands[qids[0]])  # warm-up
            rerankers[b] = rr
        except Exception as exc:  # a missing optional backend is reported, not fatal
            print(f"backend {b} unavailable: {exc}")
    times: dict[str, list[float]] = {b: [] for b in rerankers}
    scores: dict[str, list[list[float]]] = {b: [] for b in rerankers}
    for q in qids:
        for b, rr in rerankers.items():
            t0 = time.perf_counter()
            scores[b].append(rr.score(qtext[q], cands[q]))
            times[b].append(time.perf_counter() - t0)
    lines = [
        "## Rerank latency, 20 candidates per query",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}; "
        f"torch threads {torch.get_num_threads()}",
        f"- load average at start / end: {load0} / {loadavg()} (shared CPU: absolute times are inflated; the "
        "backends ran interleaved, so their ratios compare)",
        f"- command: `nice -n 10 .venv/bin/python benchmarks/rerank_latency.py {' '.join(sys.argv[1:])}`",
        f"- model: `{Path(args.model).name}` (MiniLM-L6 cross-encoder), max_length {args.max_length}, "
        f"{len(qids)} SciFact test queries x 20 documents, one batch of 20 pairs per query",
        "",
        "| backend | p50 ms | p95 ms | speed-up vs torch (p50) | Spearman vs torch (mean) | top-5 overlap vs torch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ref = times.get("torch")
    for b in rerankers:
        p50, p95 = 1000 * percentile(times[b], 50), 1000 * percentile(times[b], 95)
        sp = top = "-"
        if "torch" in scores and b != "torch":
            sp = f"{sum(spearman(x, y) for x, y in zip(scores['torch'], scores[b], strict=True)) / len(qids):.4f}"
            ov = [
                len(
                    set(sorted(range(20), key=lambda i: -x[i])[:5])
                    & set(sorted(range(20), key=lambda i: -y[i])[:5])
                )
                / 5
                for x, y in zip(scores["torch"], scores[b], strict=True)
            ]
            top = f"{sum(ov) / len(ov):.3f}"
        speed = f"{percentile(ref, 50) / percentile(times[b], 50):.2f}x" if ref else "-"
        lines.append(f"| {b} | {p50:.1f} | {p95:.1f} | {speed} | {sp} | {top} |")
        print(lines[-1], flush=True)
    key = "latency" if args.max_length == 128 else f"latency-L{args.max_length}"
    replace_section(Path(args.out), key, "\n".join(lines))


if __name__ == "__main__":
    main()
