"""Answer cache on QQP: verifier vs MiniLM cosine vs GPTCache's default recipe, lookup latency, and a replay.

    nice -n 10 .venv/bin/python benchmarks/cache_qqp.py [--data ../shared/data] [--train-pairs 6000]
        [--report-pairs 6000] [--entries 100000] [--finetune-epochs 0|1] [--out benchmarks/results/cache.md]

Protocol (the issue's): the cache holds `text_a`, a user asks `text_b`; precision = correct hits / hits, hit
rate = hits on label-1 pairs / label-1 pairs; exact repeats removed. QQP is split by connected component of
questions (no question on both sides) into a tuning part (60 %) and a report part (40 %). Every threshold is
chosen on the tuning part (the verifier's on its own held-out calibration slice, to meet precision 0.95 at the
lower bound of a 95 % Wilson interval) and measured on the report part.

Baselines on the same pairs and the same MiniLM vectors: cosine with its threshold tuned the same way; cosine at
its best threshold read off the report part itself (optimistic, in-sample); and GPTCache's default recipe
(cosine with `similarity_threshold=0.8`, its `Config` default), plus 0.9 and 0.95.

Latency: an `AnswerCache` over the embedded Qdrant engine and SQLite holding `--entries` entries in one scope
(the worst case: real MiniLM vectors of report questions plus random unit vectors as filler), timed per lookup:
embedding + search + metadata + verifier.

Replay: report-part questions asked twice in other words (label-1 pairs: `text_a` first, `text_b` later) mixed
with new questions, in random order, through `AnswerCache` (an LLM call is counted on every miss): calls avoided
and wrong answers served (a hit on a question of another duplicate group), against no cache and cosine 0.9.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def commit() -> str:
    try:
        return subprocess.check_output(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], text=True
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class VectorCache:
    """MiniLM vectors by text, kept on disk between runs of this benchmark (short questions, ~1.5 KB each)."""

    def __init__(self, path: Path) -> None:
        from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

        self.path = path
        self.embedder = SentenceTransformerEmbedder(batch_size=64)
        self.vecs: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                for k, v in zip(data["keys"], data["vecs"], strict=True):
                    self.vecs[str(k)] = v
        self.seconds = 0.0
        self.embedded = 0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def get(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self.key(t) not in self.vecs))
        if missing:
            t0 = time.perf_counter()
            for start in range(0, len(missing), 2048):
                part = missing[start : start + 2048]
                vecs = self.embedder.embed(part).vectors
                for t, v in zip(part, vecs, strict=True):
                    self.vecs[self.key(t)] = v
                print(f"  embedded {start + len(part)}/{len(missing)}", file=sys.stderr, flush=True)
            self.seconds += time.perf_counter() - t0
            self.embedded += len(missing)
            self.save()
        return np.stack([self.vecs[self.key(t)] for t in texts])

    def save(self) -> None:
        keys = list(self.vecs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vecs=np.stack([self.vecs[k] for k in keys]))
        tmp.replace(self.path)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ragcli-cache-bench"))
    ap.add_argument("--train-pairs", type=int, default=6000)
    ap.add_argument("--report-pairs", type=int, default=6000)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--replay-groups", type=int, default=600)
    ap.add_argument(
        "--finetune-epochs", type=int, default=0, help="also a head verifier on a fine-tuned encoder"
    )
    ap.add_argument(
        "--kind", choices=("cross", "head"), default="head", help="the verifier kind measured as shipped"
    )
    ap.add_argument("--cross-epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--no-optimize", action="store_true", help="latency on the cache index as written, not optimised"
    )
    ap.add_argument(
        "--latency-only",
        action="store_true",
        help="only the latency part, with the verifier a previous run left under --work; appended to --out",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cache.md"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["RAGCLI_HOME"] = str(work / "home")
    from ragcli.resources import offline_env

    offline_env()
    import cache_qqp_parts as parts

    from ragcli.eval.cache_pairs import load_pairs, split_pairs

    t_start = time.perf_counter()
    pairs_file = Path(args.data) / "qqp" / "pairs.jsonl"
    all_pairs = load_pairs(pairs_file)
    tune, report = split_pairs(all_pairs, [0.6, 0.4], seed=args.seed)
    rng = random.Random(args.seed)
    report_eval = rng.sample(report, min(args.report_pairs, len(report)))
    vc = VectorCache(work / "minilm_vectors.npz")
    print(f"QQP: {len(all_pairs)} pairs; tune {len(tune)}, report {len(report)}", file=sys.stderr)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python benchmarks/cache_qqp.py " + " ".join(sys.argv[1:]),
        "load_before": loadavg(),
        "pairs_total": len(all_pairs),
        "tune_pairs": len(tune),
        "report_pairs_used": len(report_eval),
    }
    if args.latency_only:
        lat = parts.latency(args, report_eval, vc, work)
        lat.update(
            date=results["date"],
            commit=results["commit"],
            command=results["command"],
            load_before=results["load_before"],
            load_after=loadavg(),
        )
        out = Path(args.out)
        out.with_suffix(".latency.json").write_text(json.dumps(lat, indent=2) + "\n")
        with out.open("a") as fh:
            fh.write(parts.latency_markdown(lat))
        print(parts.latency_markdown(lat))
        return
    results["verifiers"] = parts.train_verifiers(args, tune, vc, work)
    results["pairs"] = parts.pairs_table(args, tune, report_eval, vc, work, results["verifiers"])
    if not args.skip_latency:
        results["latency"] = parts.latency(args, report_eval, vc, work)
    results["replay"] = parts.replay_run(args, report, vc, work)
    results["transfer"] = (
        "not measured: no other paraphrase set (MRPC, STS-B, PAWS) is installable from PyPI offline here, "
        "and none is in ../shared/data"
    )
    results["load_after"] = loadavg()
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    results["embedding"] = {"texts_embedded_this_run": vc.embedded, "seconds": round(vc.seconds, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    out.write_text(parts.markdown(results))
    print(out.read_text())


if __name__ == "__main__":
    main()
