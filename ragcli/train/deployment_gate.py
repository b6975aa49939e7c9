"""The deployment gate: a trained model ships only when it beats the ranking it replaces on held-out labels.

The test is a paired bootstrap over queries: each held-out query has an nDCG@10 under the current ranking and
under the candidate; resampling the queries with replacement gives the distribution of the mean difference,
and the model is deployable when the lower end of its 95 % interval is above zero. The verdict is written into
the model's card (the JSON file beside the model), so a config that names a model which lost its gate can
warn at startup without re-running anything.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import InputError

log = logging.getLogger(__name__)

GATE_KEY = "gate"
"""The card's key holding the verdict."""


@dataclass(frozen=True)
class GateVerdict:
    """The comparison of a candidate ranking with the one it would replace, on held-out queries."""

    metric: str
    queries: int
    baseline: str
    candidate: str
    baseline_mean: float
    candidate_mean: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_not_better: float
    """Share of bootstrap resamples in which the candidate's mean is not above the baseline's."""
    deployable: bool
    samples: int

    def summary(self) -> str:
        """One line: the two means, the difference with its interval, and the verdict."""
        word = "DEPLOYABLE" if self.deployable else "NOT deployable"
        return (
            f"{self.metric} on {self.queries} held-out queries: {self.baseline} {self.baseline_mean:.4f} -> "
            f"{self.candidate} {self.candidate_mean:.4f} (delta {self.delta:+.4f}, "
            f"{100 * self.confidence:.0f}% CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]): {word}"
        )


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
    metric: str = "ndcg@10",
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GateVerdict:
    """Paired bootstrap on per-query scores; deployable when the interval's lower end is above zero.

    Args:
        baseline, candidate: One score per held-out query, in the same query order.
        baseline_name, candidate_name, metric: Names recorded in the verdict.
        samples: Bootstrap resamples.
        confidence: Two-sided confidence of the interval (0.95: the 2.5th..97.5th percentiles).
        seed: Resampling seed (the verdict is reproducible).
    """
    import numpy as np

    if len(baseline) != len(candidate):
        raise InputError(
            f"paired bootstrap needs one score per query on both sides: {len(baseline)} vs {len(candidate)}"
        )
    if len(baseline) < 2:
        raise InputError(
            f"the gate needs at least 2 held-out queries, got {len(baseline)}; hold out more labeled queries"
        )
    if not 0.5 <= confidence < 1 or samples < 100:
        raise InputError(f"confidence must be in [0.5, 1) and samples >= 100, got {confidence}, {samples}")
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(samples, len(diff)))
    means = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    lo, hi = (float(x) for x in np.quantile(means, [tail, 1 - tail]))
    return GateVerdict(
        metric=metric,
        queries=len(diff),
        baseline=baseline_name,
        candidate=candidate_name,
        baseline_mean=round(float(np.mean(baseline)), 4),
        candidate_mean=round(float(np.mean(candidate)), 4),
        delta=round(float(diff.mean()), 4),
        ci_low=round(lo, 4),
        ci_high=round(hi, 4),
        confidence=confidence,
        p_not_better=round(float((means <= 0).mean()), 4),
        deployable=lo > 0,
        samples=samples,
    )


def per_query_ndcg(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> list[float]:
    """nDCG@k of every query of `qrels` (in its order) under `run`; a query with no results scores 0."""
    from ragcli.eval.metrics import ndcg_at_k, unique_in_order

    return [ndcg_at_k(unique_in_order(run.get(q, ())), qrels[q], k) for q in qrels]


def write_verdict(card_path: Path, verdict: GateVerdict) -> None:
    """Record the verdict in the model's card (created if missing), with the time it was decided."""
    card: dict[str, Any] = {}
    if card_path.is_file():
        card = json.loads(card_path.read_text(encoding="utf-8"))
    card[GATE_KEY] = {**asdict(verdict), "decided_at": datetime.now(UTC).isoformat(timespec="seconds")}
    card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
