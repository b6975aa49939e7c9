"""The cost-quality picture: prompt tokens against answer-in-context, curves for budget sweeps, points for baselines.

matplotlib is imported inside `plot_tradeoff` (it is in the `bench` extra), with the non-interactive Agg backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragcli.errors import ResourceMissing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Series:
    """One line (a config swept over budgets) or one point (a baseline) on the plot.

    `tokens` and `quality` are parallel: mean prompt tokens and answer-in-context (0..1) per run.
    """

    name: str
    tokens: Sequence[float]
    quality: Sequence[float]
    labels: Sequence[str] = field(default_factory=tuple)
    """Optional annotation per point (e.g. the budget)."""


def plot_tradeoff(
    path: str | Path,
    curves: Sequence[Series],
    points: Sequence[Series] = (),
    *,
    title: str = "Prompt tokens vs answer-in-context",
    xlabel: str = "mean prompt tokens per query",
    ylabel: str = "answer in context",
) -> Path:
    """Draw the curves and baseline points into a PNG and return its path.

    Raises:
        ResourceMissing: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ResourceMissing(
            "plotting needs matplotlib; run `pip install matplotlib` (or `pip install 'ragcli[bench]'`)"
        ) from exc

    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    try:
        for s in curves:
            order = sorted(range(len(s.tokens)), key=lambda i: s.tokens[i])
            xs = [s.tokens[i] for i in order]
            ys = [100 * s.quality[i] for i in order]
            ax.plot(xs, ys, marker="o", label=s.name)
            for i in order:
                if i < len(s.labels) and s.labels[i]:
                    ax.annotate(
                        s.labels[i],
                        (s.tokens[i], 100 * s.quality[i]),
                        textcoords="offset points",
                        xytext=(4, -10),
                        fontsize=7,
                    )
        markers = "sD^vP*Xh"
        for n, s in enumerate(points):
            ax.scatter(
                list(s.tokens),
                [100 * q for q in s.quality],
                marker=markers[n % len(markers)],
                s=60,
                label=s.name,
                zorder=3,
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"{xlabel} (log scale)")
        ax.set_ylabel(f"{ylabel} (%)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    log.info("wrote plot %s", out)
    return out
