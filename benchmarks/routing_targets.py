"""What a linear router should predict: each tier's success (the shipped gap rule), the gain itself, or g - w.

    .venv/bin/python benchmarks/routing_targets.py [--data ../shared/data] [--seeds 0 1 2 3 4]

A check for issue 11. The router's features as `ragcli train router` builds them (the MiniLM embedding of the
prompt plus `RouterFeatures.dense`: cheap features, subject and benchmark one-hot), on `routing.py`'s splits (70/30
stratified by benchmark, per seed); each model is fitted on the 70 % and read by held-out APGR. Targets:
- per tier (the shipped logistic candidates, gap rule): P(strong right) - P(weak right);
- the gain class (weak wrong, strong right) alone;
- three classes of strong - weak (-1, 0, 1), score P(1) - P(-1);
- ridge regression on strong - weak (the same as a linear-probability model per tier under the gap rule);
- a blend: z-scored gap plus z-scored ridge.
No model is picked on the held-out part here: every row is shown, so the spread across rows is the point.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from routing_splits import RoutingStudy, study_parser  # noqa: E402
from trained_common import commit, machine  # noqa: E402

Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(x_train, weak_train, strong_train, x_test) -> one score per test prompt, higher = strong sooner."""


def _logreg(x: np.ndarray, y: np.ndarray, c: float) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, y)


def gap(c: float) -> Scorer:
    def score(xtr: np.ndarray, w: np.ndarray, g: np.ndarray, xte: np.ndarray) -> np.ndarray:
        strong = _logreg(xtr, g, c).predict_proba(xte)[:, 1]  # type: ignore[attr-defined]
        weak = _logreg(xtr, w, c).predict_proba(xte)[:, 1]  # type: ignore[attr-defined]
        return np.asarray(strong - weak)

    return score


def gain_class(c: float) -> Scorer:
    def score(xtr: np.ndarray, w: np.ndarray, g: np.ndarray, xte: np.ndarray) -> np.ndarray:
        y = ((w == 0) & (g == 1)).astype(int)
        return np.asarray(_logreg(xtr, y, c).predict_proba(xte)[:, 1])  # type: ignore[attr-defined]

    return score


def three_class(c: float) -> Scorer:
    def score(xtr: np.ndarray, w: np.ndarray, g: np.ndarray, xte: np.ndarray) -> np.ndarray:
        model = _logreg(xtr, (g - w).astype(int), c)
        p = model.predict_proba(xte)  # type: ignore[attr-defined]
        classes = list(model.classes_)  # type: ignore[attr-defined]
        return np.asarray(p[:, classes.index(1)] - p[:, classes.index(-1)])

    return score


def ridge(alpha: float) -> Scorer:
    def score(xtr: np.ndarray, w: np.ndarray, g: np.ndarray, xte: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import Ridge

        return np.asarray(Ridge(alpha=alpha).fit(xtr, g - w).predict(xte))

    return score


def blend(a: Scorer, b: Scorer) -> Scorer:
    def score(xtr: np.ndarray, w: np.ndarray, g: np.ndarray, xte: np.ndarray) -> np.ndarray:
        out = np.zeros(len(xte))
        for part in (a, b):
            s = part(xtr, w, g, xte)
            out += (s - s.mean()) / (s.std() or 1.0)
        return out

    return score


SCORERS: dict[str, Scorer] = {
    "per tier, gap rule, C 0.1 (a shipped candidate)": gap(0.1),
    "per tier, gap rule, C 1 (a shipped candidate)": gap(1.0),
    "gain class only, C 0.1": gain_class(0.1),
    "three classes of strong - weak, C 0.1": three_class(0.1),
    "ridge on strong - weak, alpha 30": ridge(30.0),
    "ridge on strong - weak, alpha 100": ridge(100.0),
    "ridge on strong - weak, alpha 300": ridge(300.0),
    "blend: gap C 0.1 + ridge alpha 100": blend(gap(0.1), ridge(100.0)),
}


def main() -> None:
    args = study_parser(__doc__).parse_args()
    study = RoutingStudy.load(args.data)
    for split in study.splits(args.seeds):
        weak, strong = study.weak[split.train], study.strong[split.train]
        for name, scorer in SCORERS.items():
            study.record(name, scorer(split.x_train, weak, strong, split.x_test), split.test)
    print(f"- commit {commit()}, {machine()}; seeds {args.seeds}, held-out APGR mean ± sd\n")
    print(study.table("target"))


if __name__ == "__main__":
    main()
