"""Routing metrics on offline outcomes: APGR, CPT and the cost of reaching a quality level.

A router orders prompts by a score (higher = more in need of the strong model). Sending the top share `x` of that
order to the strong model and the rest to the weak one gives a quality; the performance gap recovered is
`PGR(x) = (quality(x) - weak) / (strong - weak)`. APGR is the area under PGR over `x` from 0 to 1 (random: 0.5),
CPT(p) the smallest strong share whose PGR reaches `p`. Ties in the score are treated as a random order inside
the tie (the expected curve), so a per-subject prior is not flattered or punished by how ties happen to fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError

FloatArray = npt.NDArray[np.float64]
Values = Sequence[float] | npt.NDArray[Any]
"""Per-prompt numbers: a list or a numpy array."""


@dataclass(frozen=True)
class GainCurve:
    """Quality at each strong share `k / n` (k = 0..n) of one router's order."""

    shares: FloatArray
    quality: FloatArray
    weak: float
    strong: float

    @property
    def pgr(self) -> FloatArray:
        gap = self.strong - self.weak
        if abs(gap) < 1e-12:
            return np.zeros_like(self.quality)
        return (self.quality - self.weak) / gap

    def apgr(self) -> float:
        """Area under PGR over the strong share (trapezoid rule on every k / n)."""
        return float(np.trapezoid(self.pgr, self.shares))

    def cpt(self, level: float) -> float | None:
        """The smallest strong share whose PGR reaches `level` (interpolated), or None if it never does."""
        pgr = self.pgr
        idx = np.nonzero(pgr >= level - 1e-12)[0]
        if idx.size == 0:
            return None
        i = int(idx[0])
        if i == 0:
            return 0.0
        lo, hi = pgr[i - 1], pgr[i]
        frac = 0.0 if hi == lo else (level - lo) / (hi - lo)
        return float(self.shares[i - 1] + frac * (self.shares[i] - self.shares[i - 1]))

    def share_for_quality(self, target: float) -> float | None:
        """The smallest strong share whose quality reaches `target` (interpolated), or None."""
        idx = np.nonzero(self.quality >= target - 1e-12)[0]
        if idx.size == 0:
            return None
        i = int(idx[0])
        if i == 0:
            return 0.0
        lo, hi = self.quality[i - 1], self.quality[i]
        frac = 0.0 if hi == lo else (target - lo) / (hi - lo)
        return float(self.shares[i - 1] + frac * (self.shares[i] - self.shares[i - 1]))


def gain_curve(scores: Values, weak: Values, strong: Values) -> GainCurve:
    """The quality curve of routing the highest scores to the strong model first.

    Args:
        scores: One score per prompt; higher means "send to the strong model sooner".
        weak: The weak model's correctness (0/1 or a score in [0, 1]) per prompt.
        strong: The strong model's correctness per prompt.
    """
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64)
    if not (s.shape == w.shape == g.shape) or s.ndim != 1:
        raise InputError(
            f"scores, weak and strong must be 1-d and of one length, got {s.shape}, {w.shape}, {g.shape}"
        )
    n = s.size
    if n == 0:
        raise InputError("no outcomes to score: give at least one prompt with both models' correctness")
    gain = g - w
    order = np.argsort(-s, kind="stable")
    s_sorted, gain_sorted = s[order], gain[order]
    # inside a tie every member gets the tie's mean gain: the expected curve over random orders of the tie
    smoothed = gain_sorted.copy()
    start = 0
    while start < n:
        end = start + 1
        while end < n and s_sorted[end] == s_sorted[start]:
            end += 1
        smoothed[start:end] = gain_sorted[start:end].mean()
        start = end
    cum = np.concatenate([[0.0], np.cumsum(smoothed)])
    quality = w.mean() + cum / n
    shares = np.arange(n + 1, dtype=np.float64) / n
    return GainCurve(shares=shares, quality=quality, weak=float(w.mean()), strong=float(g.mean()))


@dataclass(frozen=True)
class RouterScore:
    """APGR and CPT of one router on one set of outcomes."""

    name: str
    n: int
    apgr: float
    cpt50: float | None
    cpt80: float | None


def score_router(name: str, scores: Values, weak: Values, strong: Values) -> RouterScore:
    curve = gain_curve(scores, weak, strong)
    return RouterScore(name=name, n=len(weak), apgr=curve.apgr(), cpt50=curve.cpt(0.5), cpt80=curve.cpt(0.8))


def length_scores(prompts: Sequence[str]) -> FloatArray:
    """The prompt-length baseline: longer prompts go to the strong model first."""
    return np.asarray([len(p) for p in prompts], dtype=np.float64)


def random_scores(n: int, seed: int = 0) -> FloatArray:
    return np.random.default_rng(seed).random(n)


def prior_scores(
    train_groups: Sequence[str],
    train_weak: Values,
    train_strong: Values,
    groups: Sequence[str],
    smoothing: float = 10.0,
) -> FloatArray:
    """The per-group prior baseline: each group's mean gain (strong - weak) on the training part, shrunk to
    the overall mean for small groups. Groups are subjects (or the benchmark where there is no subject)."""
    w = np.asarray(train_weak, dtype=np.float64)
    g = np.asarray(train_strong, dtype=np.float64)
    overall = float((g - w).mean()) if w.size else 0.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for grp, gain in zip(train_groups, g - w, strict=True):
        sums[grp] = sums.get(grp, 0.0) + float(gain)
        counts[grp] = counts.get(grp, 0) + 1
    table = {k: (sums[k] + smoothing * overall) / (counts[k] + smoothing) for k in sums}
    return np.asarray([table.get(grp, overall) for grp in groups], dtype=np.float64)


def dollars_per_1k(
    curve: GainCurve, weak_usd: float, strong_usd: float, quality_share: float = 0.95
) -> tuple[float | None, float | None]:
    """Dollars per 1,000 queries at `quality_share` of the strong model's quality, and the strong share used.

    `weak_usd` and `strong_usd` are the mean dollars of one query on each model. None when the router never
    reaches that quality.
    """
    share = curve.share_for_quality(quality_share * curve.strong)
    if share is None:
        return None, None
    return 1000.0 * (share * strong_usd + (1.0 - share) * weak_usd), share
