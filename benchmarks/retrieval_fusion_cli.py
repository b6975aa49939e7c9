"""SciFact through the product path: `ragcli train fusion` on the train qrels, then `ragcli eval retrieval` on the
test qrels with the store's hybrid (RRF) and with the trained fusion, side by side, repeated.

    nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cli.py [--data DIR] [--home DIR]

Everything runs through the CLI in a fresh home (the embedded Qdrant engine, the packaged embedder over ONNX
Runtime): the first `eval retrieval` builds the corpus's collection, `train fusion` reuses it (its own split:
80 % of the 809 train queries fit, 20 % gate), and every later run reuses it too. Order: RRF, RRF, train,
fusion, RRF, fusion, so a drift of the store's own ranking between runs shows. Writes the `fusion-cli` section
of results/retrieval_trained.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, loadavg, machine, replace_section  # noqa: E402

RAGCLI = str(Path(sys.executable).with_name("ragcli"))


def run(args: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run([RAGCLI, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ragcli {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--home", default=None, help="default: a fresh temporary folder")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval_trained.md"))
    args = ap.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="ragcli-fusion-"))
    src = Path(args.data) / "scifact_beir"
    base_cfg, fused_cfg = home / "hybrid.yaml", home / "fused.yaml"
    common = f"home: {home}\ningest:\n  sparse: true\nretrieval:\n  mode: hybrid\n"
    base_cfg.write_text(common)
    fused_cfg.write_text(common + "  fusion: trained:scifact\n")
    files = ["--corpus", str(src / "corpus.jsonl"), "--queries", str(src / "queries.jsonl")]
    t_start, load0 = time.time(), loadavg()
    rows: list[tuple[str, dict[str, float], float, float]] = []
    gate = ""

    def evaluate(label: str, cfg: Path) -> None:
        out, secs = run(
            [
                "eval",
                "retrieval",
                *files,
                "--qrels",
                str(src / "qrels" / "test.tsv"),
                "-c",
                str(cfg),
                "--json",
            ]
        )
        res = json.loads(out)
        rows.append((label, res["metrics"], res["latency_ms"]["search"]["p50"], secs))
        print(label, res["metrics"], flush=True)

    evaluate("hybrid (RRF), first run (builds the index)", base_cfg)
    evaluate("hybrid (RRF)", base_cfg)
    out, train_s = run(
        ["train", "fusion", *files, "--qrels", str(src / "qrels" / "train.tsv"), "--name", "scifact",
         "-c", str(base_cfg), "--json"]
    )  # fmt: skip
    trained = json.loads(out)
    g = trained["gate"]
    gate = (
        f"{g['candidate']} {g['candidate_mean']:.4f} vs {g['baseline']} {g['baseline_mean']:.4f} on {g['queries']} "
        f"held-out train queries: delta {g['delta']:+.4f}, 95 % CI [{g['ci_low']:+.4f}, {g['ci_high']:+.4f}], "
        f"{'DEPLOYABLE' if g['deployable'] else 'NOT deployable'}"
    )
    print(gate, flush=True)
    evaluate("hybrid + trained fusion", fused_cfg)
    evaluate("hybrid (RRF), again", base_cfg)
    evaluate("hybrid + trained fusion, again", fused_cfg)
    rep = trained["report"]
    lines = [
        "## The product path: `ragcli train fusion`, then `ragcli eval retrieval` on SciFact TEST",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / {loadavg()}",
        "- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cli.py`",
        f"- `ragcli train fusion` on the train qrels: {rep['queries']} queries fit ({rep['candidates']} candidates, "
        f"{rep['positives']} relevant), {train_s:.0f} s wall for the whole command (index reused); gate: {gate}",
        "",
        "| run (151 test queries) | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | search p50 ms | command s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, m, p50, secs in rows:
        lines.append(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
            f"{p50:.1f} | {secs:.0f} |"
        )
    replace_section(Path(args.out), "fusion-cli", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
