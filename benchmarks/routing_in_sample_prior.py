"""The per-subject prior scored on the prompts it was computed from, beside the held-out protocol (issue 11).

    .venv/bin/python benchmarks/routing_in_sample_prior.py [--data ../shared/data] [--seeds 0 1 2 3 4]

Issue 11 quotes baselines "measured elsewhere on equal data" (subject prior 0.68, a logistic regression on
embeddings 0.68). `routing.py` measures every router on a held-out 30 %, where the prior scores 0.647. This script
shows how much of that gap is the protocol: the same prior (each subject's mean of strong - weak, shrunk to the
overall mean with weight 10) computed on all 7,601 prompts and read on the same prompts, then computed on each
split's 70 % and read on its 30 %.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from routing_splits import study_parser  # noqa: E402

from ragcli.eval.routing_metrics import gain_curve, prior_scores  # noqa: E402
from ragcli.train.router_outcomes import read_outcomes, split_indices  # noqa: E402


def main() -> None:
    args = study_parser(__doc__).parse_args()
    o = read_outcomes(args.data / "routing" / "outcomes.jsonl")
    weak, strong = np.asarray(o.labels[:, 0]), np.asarray(o.labels[:, -1])
    groups = [s or b for s, b in zip(o.subjects, o.benchmarks, strict=True)]
    bench = np.asarray(o.benchmarks)

    def apgr(scores: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
        """Combined and MMLU APGR of `scores`, one per prompt of `idx`."""
        w, g, m = weak[idx], strong[idx], bench[idx] == "mmlu"
        return gain_curve(scores, w, g).apgr(), gain_curve(scores[m], w[m], g[m]).apgr()

    everything = np.arange(len(groups))
    combined, mmlu = apgr(prior_scores(groups, weak, strong, groups), everything)
    print("| prior computed on | read on | combined | MMLU |\n| --- | --- | ---: | ---: |")
    print(f"| all {len(groups):,} prompts | the same prompts | {combined:.3f} | {mmlu:.3f} |")
    held: list[tuple[float, float]] = []
    for seed in args.seeds:
        train, test = split_indices(o, [0.7, 0.3], seed)
        g_train = [groups[i] for i in train]
        scores = prior_scores(g_train, weak[train], strong[train], [groups[i] for i in test])
        held.append(apgr(scores, np.asarray(test)))
    c, m = np.asarray(held).T
    print(f"| each seed's 70 % | its 30 % ({len(args.seeds)} seeds) | {c.mean():.3f} ± {c.std():.3f} | "
          f"{m.mean():.3f} ± {m.std():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
