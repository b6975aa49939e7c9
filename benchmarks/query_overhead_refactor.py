"""Query overhead outside the LLM, before and after a change of the query path, side by side in one run.

    .venv/bin/python benchmarks/query_overhead_refactor.py [--before 82176cf] [--docs 300] [--queries 40] [--rounds 3]

Exports the `--before` commit's `ragcli/` into a temporary folder, then alternates child processes of the old and
the current code (before, after, before, after, ...) over the same SciFact documents and test queries, with the
real models of the default config (MiniLM embeddings, hybrid search on the embedded Qdrant engine, packing that
counts tokens with SmolLM2's tokenizer). Each child builds its own index in its own home once, then times
`answer(q, no_answer=True)` per query: everything up to the LLM call, ledger rows included. Alternating rounds on
the same machine cancel most of the drift of a shared CPU; the report gives per-round p50/p95 and their ratio.
Writes benchmarks/results/query_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
root, home, corpus, queries_file, n_docs, n_queries = sys.argv[1:7]
sys.path.insert(0, root)
os.environ["RAGCLI_HOME"] = home
from ragcli.resources import offline_env
offline_env()
from ragcli.config import load_config
from ragcli.pipelines.stages import Stages
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
import ragcli
assert ragcli.__file__.startswith(root), ragcli.__file__
cfg = load_config("local", overrides={"collection": "overhead", "home": home})
stages = Stages.from_config(cfg)
docs_dir = os.path.join(home, "docs")
if not os.path.isdir(docs_dir):
    os.makedirs(docs_dir)
    with open(corpus) as f:
        for i, line in enumerate(f):
            if i >= int(n_docs):
                break
            d = json.loads(line)
            with open(os.path.join(docs_dir, d["_id"] + ".txt"), "w") as out:
                out.write(d["title"] + "\n\n" + d["text"] + "\n")
ingest([docs_dir], stages)
qs = [json.loads(l)["text"] for l in open(queries_file)][: int(n_queries)]
answer(qs[0], stages, QueryOptions(no_answer=True))  # warm: models loaded, caches filled
times = []
for q in qs:
    t0 = time.perf_counter()
    answer(q, stages, QueryOptions(no_answer=True))
    times.append(time.perf_counter() - t0)
stages.close()
print(json.dumps(times))
"""


def export(rev: str, dest: Path) -> Path:
    """The `ragcli/` package of `rev`, unpacked under `dest`."""
    archive = dest / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "ragcli"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "src", filter="data")
    return dest / "src"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--before", default="82176cf")
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "query_overhead.md"))
    args = ap.parse_args()
    sci = Path(args.data) / "scifact_beir"
    tmp = Path(tempfile.mkdtemp(prefix="ragcli-overhead-"))
    roots = {"before": export(args.before, tmp), "after": ROOT}
    queries = tmp / "queries.jsonl"
    test_ids = {ln.split("\t")[0] for ln in (sci / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    with open(sci / "queries.jsonl") as f, open(queries, "w") as out:
        out.writelines(ln for ln in f if json.loads(ln)["_id"] in test_ids)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": ""}
    runs: dict[str, list[list[float]]] = {"before": [], "after": []}
    loads: list[str] = []
    for r in range(args.rounds):
        for name, root in roots.items():
            home = tmp / f"home-{name}"
            cmd = [sys.executable, "-c", CHILD, str(root), str(home), str(sci / "corpus.jsonl"), str(queries)]
            res = subprocess.run(
                [*cmd, str(args.docs), str(args.queries)], env=env, cwd=tmp, capture_output=True, text=True
            )
            if res.returncode != 0:
                sys.exit(f"{name} round {r + 1} failed:\n{res.stderr[-3000:]}")
            runs[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            loads.append(Path("/proc/loadavg").read_text().split()[0])
            print(f"round {r + 1} {name}: p50 {statistics.median(runs[name][-1]) * 1000:.1f} ms", flush=True)
    rows = []
    for r in range(args.rounds):
        b, a = runs["before"][r], runs["after"][r]
        rows.append(
            f"| {r + 1} | {pct(b, 50) * 1e3:.1f} | {pct(a, 50) * 1e3:.1f} | {pct(a, 50) / pct(b, 50):.2f} "
            f"| {pct(b, 95) * 1e3:.1f} | {pct(a, 95) * 1e3:.1f} |"
        )
    allb = [x for xs in runs["before"] for x in xs]
    alla = [x for xs in runs["after"] for x in xs]
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    text = "\n".join(
        [
            "# Query overhead outside the LLM: before and after the query-steps refactor",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip()} (working tree) "
            f"against {args.before}, {os.cpu_count()} cores, load average at each child's end: {', '.join(loads)} "
            "(a shared machine: other jobs ran).",
            f"Command: `.venv/bin/python benchmarks/query_overhead_refactor.py --before {args.before} "
            f"--docs {args.docs} --queries {args.queries} --rounds {args.rounds}`",
            "",
            f"`answer(q, no_answer=True)` per query, {args.queries} SciFact test queries over {args.docs} SciFact "
            "documents, preset `local` (MiniLM, hybrid search, qdrant-edge, SmolLM2 tokenizer for packing), "
            "rounds alternating old and new code in fresh processes.",
            "",
            "| round | before p50 ms | after p50 ms | after/before | before p95 ms | after p95 ms |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            f"| all | {pct(allb, 50) * 1e3:.1f} | {pct(alla, 50) * 1e3:.1f} | {pct(alla, 50) / pct(allb, 50):.2f} "
            f"| {pct(allb, 95) * 1e3:.1f} | {pct(alla, 95) * 1e3:.1f} |",
            "",
        ]
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
