"""SciFact through the product path: `ragcli train fusion` on the train qrels, then `ragcli eval retrieval` on the
test qrels with the store's hybrid (RRF) and with the trained fusion, side by side, repeated.

    nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cli.py [--data DIR] [--home DIR]

Everything runs through the CLI in a fresh home (the embedded Qdrant engine, the packaged embedder over ONNX
Runtime): the first `eval retrieval` builds the corpus's collection, `train fusion` reuses it (its own split:
80 % of the 809 train queries fit, 20 % gate), and every later run reuses it too. Order: RRF, RRF, train,
fusion, RRF, fusion, so a drift of the store's own ranking between runs shows. Writes the `fusion-cli` section
of results/retrieval_trained.md.

With `--sentences` it also trains `scifact-sentences` with `ragcli train fusion --sentences` and runs it beside
the others (RRF, RRF, train both, fusion, sentences fusion, RRF, fusion, sentences fusion); its first run embeds
the test queries' candidates that training did not meet, the second finds them kept. Writes the
`fusion-cli-sentences` section instead.
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
from typing import Any

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
    ap.add_argument(
        "--sentences", action="store_true", help="also train and run a fusion with sentence features"
    )
    args = ap.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="ragcli-fusion-"))
    src = Path(args.data) / "scifact_beir"
    base_cfg, fused_cfg = home / "hybrid.yaml", home / "fused.yaml"
    common = f"home: {home}\ningest:\n  sparse: true\nretrieval:\n  mode: hybrid\n"
    base_cfg.write_text(common)
    fused_cfg.write_text(common + "  fusion: trained:scifact\n")
    sent_cfg = home / "sentences.yaml"
    sent_cfg.write_text(common + "  fusion: trained:scifact-sentences\n")
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

    def train(name: str, *extra: str) -> tuple[dict[str, Any], float, str]:
        out, secs = run(
            ["train", "fusion", *files, "--qrels", str(src / "qrels" / "train.tsv"), "--name", name,
             "-c", str(base_cfg), "--json", *extra]
        )  # fmt: skip
        trained = json.loads(out)
        g = trained["gate"]
        gate = (
            f"{g['candidate']} {g['candidate_mean']:.4f} vs {g['baseline']} {g['baseline_mean']:.4f} on "
            f"{g['queries']} held-out train queries: delta {g['delta']:+.4f}, 95 % CI [{g['ci_low']:+.4f}, "
            f"{g['ci_high']:+.4f}], {'DEPLOYABLE' if g['deployable'] else 'NOT deployable'}"
        )
        print(name, gate, flush=True)
        return trained, secs, gate

    trained, train_s, gate = train("scifact")
    if args.sentences:
        _, strain_s, sgate = train("scifact-sentences", "--sentences")
    evaluate("hybrid + trained fusion", fused_cfg)
    if args.sentences:
        evaluate("hybrid + trained fusion with sentences (first run)", sent_cfg)
    evaluate("hybrid (RRF), again", base_cfg)
    evaluate("hybrid + trained fusion, again", fused_cfg)
    if args.sentences:
        evaluate("hybrid + trained fusion with sentences, again", sent_cfg)
    rep = trained["report"]
    lines = [
        "## The product path: `ragcli train fusion`, then `ragcli eval retrieval` on SciFact TEST"
        + (", with sentence features" if args.sentences else ""),
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / {loadavg()}",
        "- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cli.py"
        + (" --sentences`" if args.sentences else "`"),
        f"- `ragcli train fusion` on the train qrels: {rep['queries']} queries fit ({rep['candidates']} candidates, "
        f"{rep['positives']} relevant), {train_s:.0f} s wall for the whole command (index reused); gate: {gate}",
    ]
    if args.sentences:
        lines.append(
            f"- `ragcli train fusion --sentences`, same split: {strain_s:.0f} s wall (sentences of every training "
            f"candidate embedded); gate: {sgate}"
        )
    lines += [
        "",
        "| run (151 test queries) | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | search p50 ms | command s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, m, p50, secs in rows:
        lines.append(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
            f"{p50:.1f} | {secs:.0f} |"
        )
    replace_section(
        Path(args.out), "fusion-cli-sentences" if args.sentences else "fusion-cli", "\n".join(lines)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
