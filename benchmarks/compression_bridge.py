"""Sweep the compressor's bridge bonus (the first sentence of a paragraph whose title a best sentence names).

Chosen on the HotpotQA tune half (the first half of the span-answer questions), then read on the report half:

    .venv/bin/python benchmarks/compression_bridge.py [--data ../shared/data] [--split tune|report]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compression import answer_kept, hotpot_halves  # noqa: E402

import ragcli.generation.sentence_compressor as sc  # noqa: E402
from ragcli.cost.tokens import counter_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", choices=("tune", "report"), default="tune")
    args = ap.parse_args()
    count = counter_for("gpt-4").count
    tune, report = hotpot_halves(args.data)
    its = tune if args.split == "tune" else report
    print(f"| {args.split} half | best units read | bridge weight | 3x kept | 5x kept |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for reads in (3, 6):
        sc._BRIDGE_FROM = reads  # how many best units are read for titles
        for weight in (0.0, 0.25, 0.5, 1.0, 2.0):
            comp = sc.SentenceCompressor(count, bridge_weight=weight)
            kept = [answer_kept(comp, its, ratio) for ratio in (3.0, 5.0)]
            print(f"| {len(its)} | {reads} | {weight} | {kept[0]:.1%} | {kept[1]:.1%} |", flush=True)


if __name__ == "__main__":
    main()
