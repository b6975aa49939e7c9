"""The prompt's words as router features: TF-IDF n-grams instead of, or beside, the MiniLM embedding (issue 11).

    .venv/bin/python benchmarks/routing_tfidf.py [--data ../shared/data] [--seeds 0 1 2 3 4]

A sentence embedding averages a prompt into 384 numbers; a bag of word or character n-grams keeps the rare terms
(a named theorem, a unit, a statute) that might say which questions the weak model misses. Protocol of
`routing.py`: five 70/30 splits stratified by benchmark; the vocabulary and IDF are fitted on the training part
only. Each scorer is a logistic regression per tier under the gap rule (P(strong right) - P(weak right)), fitted on
the 70 % and read by held-out APGR (mean ± sd over the seeds). Rows: the router's own features (embedding plus
`RouterFeatures.dense`) as a reference; TF-IDF alone at two regularisation strengths; TF-IDF beside the
standardised router features (scaled by 0.1, so the n-grams are not drowned), at two weights of the n-grams.
Every row is shown; none is picked on the held-out part.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from routing_splits import RoutingStudy, study_parser  # noqa: E402
from routing_targets import gap  # noqa: E402
from trained_common import commit, machine  # noqa: E402


def _vectorizers() -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return {
        "words 1-2": TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        "characters 3-5": TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, max_features=100_000
        ),
    }


def main() -> None:
    from scipy import sparse
    from sklearn.preprocessing import StandardScaler

    args = study_parser(__doc__).parse_args()
    study = RoutingStudy.load(args.data)
    prompts = study.outcomes.prompts
    for split in study.splits(args.seeds):
        weak, strong = study.weak[split.train], study.strong[split.train]
        study.record(
            "router features (embedding + dense), C 0.1",
            gap(0.1)(split.x_train, weak, strong, split.x_test),
            split.test,
        )
        scaler = StandardScaler().fit(split.x_train)
        dense_train = sparse.csr_matrix(scaler.transform(split.x_train) * 0.1)
        dense_test = sparse.csr_matrix(scaler.transform(split.x_test) * 0.1)
        for name, vec in _vectorizers().items():
            t_train = vec.fit_transform([prompts[i] for i in split.train])
            t_test = vec.transform([prompts[i] for i in split.test])
            for c in (1.0, 4.0):
                study.record(
                    f"TF-IDF {name} alone, C {c:g}", gap(c)(t_train, weak, strong, t_test), split.test
                )
            for weight in (0.5, 1.0):
                x_train = sparse.hstack([t_train * weight, dense_train]).tocsr()
                x_test = sparse.hstack([t_test * weight, dense_test]).tocsr()
                study.record(
                    f"TF-IDF {name} x{weight:g} beside the router features, C 1",
                    gap(1.0)(x_train, weak, strong, x_test),
                    split.test,
                )
    print(f"- commit {commit()}, {machine()}; seeds {args.seeds}, held-out APGR mean ± sd\n")
    print(study.table("features"))


if __name__ == "__main__":
    main()
