"""nDCG@10 on SciFact (BEIR test qrels): dense alone, BM25 (sparse), hybrid, and dense + a reranker trained here
on the TRAIN qrels only. Writes benchmarks/results/retrieval.md.

    .venv/bin/python benchmarks/retrieval_scifact.py [--data DIR] [--home DIR]

The index (5,183 documents embedded with the packaged all-MiniLM-L6-v2) is built once under `--home` (default
~/.ragcli-bench, outside the repo) and reused by every run. The reranker is trained once per settings and
reused (delete `<home>/rerankers/<name>` to retrain).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), "?")
    except OSError:
        name = "?"
    return f"{name}, {os.cpu_count()} cores"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout.strip()


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--home", default=str(Path("~/.ragcli-bench").expanduser()))
    ap.add_argument("--reranker-name", default="scifact-minilm")
    ap.add_argument("--train-queries", type=int, default=250, help="train queries sampled (CPU time)")
    ap.add_argument("--negatives", type=int, default=2, help="hard negatives mined per train query")
    ap.add_argument("--rerank-depth", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-5, help="learning rate of the reranker fine-tune")
    ap.add_argument("--skip", nargs="*", default=[], help="runs to skip: dense sparse hybrid rerank")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval.md"))
    args = ap.parse_args()

    os.environ["RAGCLI_HOME"] = args.home
    from ragcli.resources import offline_env

    offline_env()
    from ragcli.config import parse_config
    from ragcli.eval.retrieval_eval import evaluate_retrieval
    from ragcli.retrieval.reranker_models import rerankers_dir
    from ragcli.train.reranker_data import load_training_data
    from ragcli.train.reranker_training import CARD, train_reranker

    src = Path(args.data) / "scifact_beir"
    corpus, queries = src / "corpus.jsonl", src / "queries.jsonl"
    test, train = src / "qrels" / "test.tsv", src / "qrels" / "train.tsv"
    results_file = Path(args.home) / "retrieval_results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.is_file() else {}

    def run(label: str, cfg_data: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        r = evaluate_retrieval(parse_config(cfg_data), corpus, queries, test, rerank_depth=args.rerank_depth)
        results[label] = {
            "metrics": r.metrics,
            "latency_ms": r.latency_ms,
            "queries": r.queries,
            "index_reused": r.index_reused,
            "embedded_docs": r.embedded_docs,
            "index_seconds": r.index_seconds,
            "seconds": round(time.perf_counter() - t0, 1),
            "config": cfg_data,
        }
        results_file.write_text(json.dumps(results, indent=2))
        print(label, r.metrics, file=sys.stderr)

    if "dense" not in args.skip:
        run("dense", {"retrieval": {"mode": "dense"}})
    if "sparse" not in args.skip:
        run("sparse (BM25)", {"retrieval": {"mode": "sparse"}})
    if "hybrid" not in args.skip:
        run("hybrid (RRF k=60)", {"retrieval": {"mode": "hybrid"}})
    training: dict[str, Any] = {}
    if "rerank" not in args.skip:
        card = rerankers_dir(Path(args.home)) / args.reranker_name / CARD
        if card.is_file():
            training = json.loads(card.read_text())
        else:
            cfg = parse_config({})
            data = load_training_data(
                cfg,
                corpus=corpus,
                queries=queries,
                qrels=train,
                negatives_per_query=args.negatives,
                max_queries=args.train_queries,
            )
            report = train_reranker(
                data.pairs,
                name=args.reranker_name,
                epochs=args.epochs,
                batch_size=16,
                learning_rate=args.lr,
                max_length=args.max_length,
                home=Path(args.home),
                negatives_source=data.negatives_source,
                data=data.data,
            )
            training = json.loads(card.read_text())
            print("trained", report, file=sys.stderr)
        run(
            f"dense + reranker trained:{args.reranker_name} (top {args.rerank_depth})",
            {
                "retrieval": {"mode": "dense"},
                "reranker": {
                    "type": "cross_encoder",
                    "model": f"trained:{args.reranker_name}",
                    "max_length": args.max_length,
                },
            },
        )
        results["_training"] = training
        results_file.write_text(json.dumps(results, indent=2))
    write_markdown(Path(args.out), results, args)


def write_markdown(path: Path, results: dict[str, Any], args: argparse.Namespace) -> None:
    lines = [
        "# Retrieval on SciFact (BEIR test qrels)",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit `{commit()}`; machine: {machine()}, "
        "shared by five engineers' concurrent jobs (latencies are inflated and noisy).",
        "- command: `.venv/bin/python benchmarks/retrieval_scifact.py` (defaults: "
        f"--train-queries {args.train_queries} --negatives {args.negatives} --rerank-depth {args.rerank_depth} "
        f"--max-length {args.max_length})",
        "- data: ../shared/data/scifact_beir: 5,183 documents (title + text, one chunk each, truncated at the "
        "model's 256 tokens), the queries with test qrels; BEIR metric definitions (pytrec_eval's).",
        "- embedder: the packaged all-MiniLM-L6-v2; store: Qdrant edge (embedded). References: MiniLM dense ~0.64, "
        "BM25 0.665 nDCG@10.",
        "",
        "| run | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | embed q p50/p95 ms | search p50/p95 ms | "
        "rerank p50/p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in results.items():
        if label.startswith("_"):
            continue
        m, lat = r["metrics"], r["latency_ms"]

        def cell(stage: str, lat: dict[str, Any] = lat) -> str:
            s = lat.get(stage)
            return f"{s['p50']:.1f} / {s['p95']:.1f}" if s else "-"

        lines.append(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | "
            f"{m['mrr@10']:.4f} | {cell('embed_query')} | {cell('search')} | {cell('rerank')} |"
        )
    t = results.get("_training")
    if t:
        d = t.get("data", {})
        lines += [
            "",
            "## The reranker (trained here, on the TRAIN qrels only)",
            "",
            f"- base: the packaged all-MiniLM-L6-v2 encoder + a 1-logit head; {t['epochs']} epoch, batch "
            f"{t['batch_size']}, lr {t['learning_rate']}, max_length {t['max_length']}, BCE loss; "
            f"{t['seconds']:.0f} s on the CPU above.",
            f"- data: {d.get('train_queries', '?')} queries sampled from qrels/train.tsv (seed 0) -> "
            f"{t['pairs']} pairs: {t['positives']} positives (the judged documents) and {t['negatives']} "
            f"negatives ({d.get('negatives_per_query', '?')} per query, {t['negatives_source']}"
            + (f": collection {d['mined_from']}" if d.get("mined_from") else "")
            + "; the top dense hits that are not judged relevant). The test qrels were never used in training.",
            f"- final training loss (EMA): {t['final_loss']}; trained at {t.get('trained_at', '?')}.",
            "- at query time it re-orders the top "
            f"{args.rerank_depth} dense candidates (cut-off and de-duplication off for this measurement).",
        ]
    write_section(path, "quality", "\n".join(lines))


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or append) the section between `<!-- name -->` markers, so each script owns its part."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    print(f"wrote {path} ({name})", file=sys.stderr)


if __name__ == "__main__":
    main()
