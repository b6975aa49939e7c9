"""Precision-first thresholds for the answer cache: a precision / hit-rate curve and a binomial lower bound.

A cache serves an answer when the verifier's score clears a threshold. On labeled pairs (the cache holds
`text_a`, the user asks `text_b`), a hit on a label-1 pair is a correct answer served and a hit on a label-0
pair is a wrong one. The threshold is the lowest one whose precision's Wilson lower bound (two-sided, 95 % by
default) still meets the target: the point estimate alone would overstate what a few hundred pairs prove.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragcli.errors import InputError

NEVER = float("inf")
"""The threshold of a verifier that cannot meet its target on the calibration pairs: it never serves."""


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion `correct / total` (two-sided)."""
    if total <= 0:
        return 0.0, 1.0
    if not 0.5 <= confidence < 1.0:
        raise InputError(f"confidence must be in [0.5, 1), got {confidence}")
    z = _z(confidence)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(confidence: float) -> float:
    """The standard normal quantile for a two-sided `confidence` (bisection on erf: no scipy needed)."""
    target = 1 - (1 - confidence) / 2
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class CurvePoint:
    """What serving at `threshold` does on labeled pairs."""

    threshold: float
    hits: int
    correct: int
    precision: float
    hit_rate: float
    """Correct hits / label-1 pairs."""
    lower: float
    upper: float


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what it achieved on the pairs it was chosen on."""

    threshold: float
    target_precision: float
    confidence: float
    pairs: int
    positives: int
    hits: int
    correct: int
    precision: float
    lower: float
    upper: float
    hit_rate: float
    reachable: float = 0.0
    """The highest lower bound any threshold (with enough hits) reached on these pairs: the strictest target they
    can support. Below the target when nothing serves, which tells the user what to ask for instead."""

    @property
    def serves(self) -> bool:
        """False when no threshold met the target: the semantic tier then never serves."""
        return math.isfinite(self.threshold)


def _check(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, ...]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.shape != y.shape or s.ndim != 1:
        raise InputError(f"got {s.shape} scores for {y.shape} labels; give one score per labeled pair")
    if len(s) == 0:
        raise InputError("no labeled pairs to calibrate on; give a pairs file with text_a, text_b, label")
    return s, y


def precision_curve(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    confidence: float = 0.95,
    points: int | None = None,
) -> list[CurvePoint]:
    """Precision and hit rate at every distinct score used as a threshold, highest threshold first.

    Args:
        scores: The verifier's score for each pair.
        labels: 1 when the pair is the same question, else 0.
        confidence: Of the Wilson interval around each precision.
        points: Keep about this many points, evenly spaced in hits (for printing); None keeps all.
    """
    s, y = _check(scores, labels)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    correct = np.cumsum(y_sorted)
    # a threshold includes every pair with the same score, so keep the last index of each run of ties
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    if points is not None and len(last) > points:
        last = last[np.unique(np.linspace(0, len(last) - 1, points).round().astype(int))]
    positives = max(int(y.sum()), 1)
    out = []
    for i in last:
        hits, ok = int(i) + 1, int(correct[i])
        lo, hi = wilson_interval(ok, hits, confidence)
        out.append(CurvePoint(float(s_sorted[i]), hits, ok, ok / hits, ok / positives, lo, hi))
    return out


def choose_threshold(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    target_precision: float = 0.95,
    confidence: float = 0.95,
    min_hits: int = 20,
) -> Calibration:
    """The lowest threshold whose precision's lower bound meets `target_precision` (at least `min_hits` hits).

    Returns a calibration with threshold `NEVER` when no threshold qualifies.
    """
    if not 0.0 < target_precision < 1.0:
        raise InputError(f"target precision must be in (0, 1), got {target_precision}")
    s, y = _check(scores, labels)
    curve = precision_curve(s, y, confidence=confidence)
    chosen = None
    for p in curve:
        if p.hits >= min_hits and p.lower >= target_precision:
            chosen = p
    positives = int(y.sum())
    reachable = max((p.lower for p in curve if p.hits >= min_hits), default=0.0)
    if chosen is None:
        return Calibration(
            NEVER, target_precision, confidence, len(s), positives, 0, 0, 0.0, 0.0, 1.0, 0.0, reachable
        )
    return Calibration(
        threshold=chosen.threshold,
        target_precision=target_precision,
        confidence=confidence,
        pairs=len(s),
        positives=positives,
        hits=chosen.hits,
        correct=chosen.correct,
        precision=chosen.precision,
        lower=chosen.lower,
        upper=chosen.upper,
        hit_rate=chosen.hit_rate,
        reachable=reachable,
    )


def measure_at(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    threshold: float,
    *,
    confidence: float = 0.95,
) -> CurvePoint:
    """Precision (with its interval) and hit rate of a fixed threshold on other pairs (held-out reporting)."""
    s, y = _check(scores, labels)
    served = s >= threshold
    hits, ok = int(served.sum()), int((served & (y == 1)).sum())
    lo, hi = wilson_interval(ok, hits, confidence)
    return CurvePoint(
        threshold, hits, ok, ok / hits if hits else 1.0, ok / max(int(y.sum()), 1), lo if hits else 0.0, hi
    )


def best_at_precision(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, target_precision: float
) -> CurvePoint | None:
    """The point of highest hit rate whose *point* precision meets the target (an optimistic, in-sample best)."""
    best = None
    for p in precision_curve(scores, labels):
        if p.precision >= target_precision and (best is None or p.hit_rate > best.hit_rate):
            best = p
    return best
