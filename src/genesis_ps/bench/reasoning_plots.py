"""The reasoning benchmark's plot: one point per method with intervals on both axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

__all__ = ["scatter_xy"]

Point = tuple[str, float, Sequence[float], float, Sequence[float]]
"""(label, x, (x_low, x_high), y, (y_low, y_high))."""


def _err(v: float, ci: Sequence[float]) -> list[list[float]] | None:
    lo, hi = ci
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [[max(v - lo, 0.0)], [max(hi - v, 0.0)]]


def scatter_xy(path: str | Path, points: Sequence[Point], *, xlabel: str, ylabel: str, title: str) -> Path:
    """Labelled points with horizontal and vertical error bars; y from 0 to 1 (accuracies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.6), dpi=110)
    for k, (label, x, xci, y, yci) in enumerate(points):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        ax.errorbar([x], [y], xerr=_err(x, xci), yerr=_err(y, yci), fmt="o", capsize=4, label=label,
                    color=f"C{k % 10}")  # fmt: skip
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6 + 9 * (k % 2)), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p
