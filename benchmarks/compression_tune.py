"""Weight sweep for SentenceCompressor on the HotpotQA tune split (the first half): answer kept at 3x and 5x.

.venv/bin/python benchmarks/compression_tune.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compression import answer_kept, hotpot_halves  # noqa: E402

from ragcli.cost.tokens import counter_for  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    count = counter_for("gpt-4").count
    tune, _ = hotpot_halves(args.data)
    grid = {
        "hop_weight": (0.25, 0.5, 1.0, 1.5, 2.5),
        "prior_weight": (0.1, 0.25, 0.5, 1.0),
        "lead_weight": (0.0, 0.15, 0.4, 0.7),
    }
    print("| hop | prior | lead | 3x kept | 5x kept |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for hop, prior, lead in itertools.product(*grid.values()):
        comp = SentenceCompressor(count, hop_weight=hop, prior_weight=prior, lead_weight=lead)
        kept = [answer_kept(comp, tune, ratio) for ratio in (3.0, 5.0)]
        print(f"| {hop} | {prior} | {lead} | {kept[0]:.1%} | {kept[1]:.1%} |", flush=True)


if __name__ == "__main__":
    main()
