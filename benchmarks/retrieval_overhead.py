"""Per-query overhead outside the LLM call on SciFact: embed query, search, rerank, pack (p50 / p95 per stage).

    .venv/bin/python benchmarks/retrieval_overhead.py [--data DIR] [--home DIR] [--queries N]

Runs the real query pipeline (`answer(..., no_answer=True)`: everything up to the LLM call, ledger rows
included) over SciFact test queries against the index that benchmarks/retrieval_scifact.py built under `--home`
(it builds it if missing). Packing counts tokens with the local model's own tokenizer (SmolLM2 via
llama-cpp-python), as the default config does. Writes its section of benchmarks/results/retrieval.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from retrieval_scifact import commit, machine, write_section  # noqa: E402


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--home", default=str(Path("~/.ragcli-bench").expanduser()))
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--max-length", type=int, default=192, help="the reranker's max tokens per pair")
    ap.add_argument("--reranker-name", default="scifact-minilm")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval.md"))
    args = ap.parse_args()
    os.environ["RAGCLI_HOME"] = args.home
    from ragcli.resources import offline_env

    offline_env()
    from ragcli.config import parse_config
    from ragcli.eval.beir import load_corpus, load_qrels, load_queries
    from ragcli.eval.metrics import percentile
    from ragcli.eval.retrieval_eval import build_index, collection_name
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages
    from ragcli.retrieval.reranker_models import rerankers_dir

    src = Path(args.data) / "scifact_beir"
    corpus_path = src / "corpus.jsonl"
    queries = load_queries(src / "queries.jsonl")
    qids = [q for q in load_qrels(src / "qrels" / "test.tsv") if q in queries][: args.queries]
    base = parse_config({"ingest": {"sparse": True}})
    collection = collection_name(corpus_path, base)

    runs: list[tuple[str, dict[str, Any]]] = [
        ("dense", {"retrieval": {"mode": "dense", "candidates": args.candidates, "top_k": 5}}),
        ("hybrid", {"retrieval": {"mode": "hybrid", "candidates": args.candidates, "top_k": 5}}),
    ]
    if (rerankers_dir(Path(args.home)) / args.reranker_name / "config.json").is_file():
        runs.append(
            (
                f"dense + rerank (trained:{args.reranker_name}, {args.candidates} candidates -> top 5)",
                {
                    "retrieval": {"mode": "dense", "candidates": args.candidates},
                    "reranker": {
                        "type": "cross_encoder",
                        "model": f"trained:{args.reranker_name}",
                        "top_n": 5,
                        "max_length": args.max_length,
                    },
                },
            )
        )
    rows = []
    shared: dict[str, Any] = {}
    for label, data in runs:
        cfg = parse_config(
            {"collection": collection, "ingest": {"sparse": True}, "packing": {"budget_tokens": 1024}, **data}
        )
        stages = Stages.from_config(cfg, **shared)
        if not shared:
            build_index(stages, load_corpus(corpus_path))  # no-op when the index exists
            t0 = time.perf_counter()
            _ = stages.llm.count_tokens("warm up")
            print(f"llm tokenizer ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        times: dict[str, list[float]] = {}
        for i, qid in enumerate(qids):
            t0 = time.perf_counter()
            ans = answer(queries[qid], stages, QueryOptions(no_answer=True))
            total = time.perf_counter() - t0
            if i < 3:  # warm-up: first calls load models
                continue
            for t in ans.trace:
                times.setdefault(t.stage, []).append(t.seconds)
            times.setdefault("total (incl. ledger)", []).append(total)
        rows.append((label, times))
        print(label, {k: round(percentile(v, 50) * 1000, 1) for k, v in times.items()}, file=sys.stderr)
        # the next run reuses the loaded models and the open store
        shared = {
            "embedder": stages.embedder,
            "store": stages.store,
            "llm": stages.llm,
            "ledger": stages.ledger,
        }
    stages.close()

    stages_order = ["embed_query", "search", "rerank", "pack", "total (incl. ledger)"]
    lines = [
        "## Per-query overhead outside the LLM call",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit `{commit()}`; machine: {machine()}, "
        "shared by five engineers' concurrent jobs (numbers are inflated and noisy).",
        f"- command: `.venv/bin/python benchmarks/retrieval_overhead.py --queries {args.queries}`",
        f"- {len(qids) - 3} SciFact test queries per run (3 warm-up queries not counted), the real query pipeline "
        "up to the LLM call (`answer(..., no_answer=True)`), index of 5,183 documents in Qdrant edge, packing to "
        "a 1,024-token budget with the local SmolLM2 tokenizer. p50 / p95 in milliseconds.",
        "",
        "| run | " + " | ".join(stages_order) + " |",
        "| --- | " + " | ".join("---" for _ in stages_order) + " |",
    ]
    for label, times in rows:
        cells = []
        for stage in stages_order:
            v = times.get(stage)
            cells.append(f"{percentile(v, 50) * 1000:.1f} / {percentile(v, 95) * 1000:.1f}" if v else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    write_section(Path(args.out), "overhead", "\n".join(lines))


if __name__ == "__main__":
    main()
