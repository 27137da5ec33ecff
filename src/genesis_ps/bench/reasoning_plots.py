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


def _dodge(xs: Sequence[float]) -> list[float]:
    """Horizontal offsets that set points with (nearly) the same x side by side, so their bars stay visible."""
    span = max((abs(x) for x in xs), default=1.0) or 1.0
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault(round(x / (0.02 * span)), []).append(i)
    off = [0.0] * len(xs)
    for members in groups.values():
        for j, i in enumerate(members):
            off[i] = (j - (len(members) - 1) / 2) * 0.035 * span
    return off


def scatter_xy(path: str | Path, points: Sequence[Point], *, xlabel: str, ylabel: str, title: str) -> Path:
    """Labelled points with horizontal and vertical error bars; y from 0 to 1 (accuracies). Points with
    the same x are drawn side by side (their labels say which is which)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genesis_ps.bench.report import save_figure

    fig, ax = plt.subplots(figsize=(7.2, 4.8), dpi=110)
    shown = [p for p in points if p[1] is not None and p[3] is not None and math.isfinite(p[1]) and math.isfinite(p[3])]
    right = 0.0
    for k, ((label, x, xci, y, yci), dx) in enumerate(zip(shown, _dodge([p[1] for p in shown]), strict=True)):
        ax.errorbar([x + dx], [y], xerr=_err(x, xci), yerr=_err(y, yci), fmt="o", capsize=4, color=f"C{k % 10}")
        ax.annotate(label, (x + dx, y), textcoords="offset points", xytext=(5, 4), fontsize=8, color=f"C{k % 10}")
        hi = xci[1] if xci[1] is not None and math.isfinite(xci[1]) else x
        right = max(right, hi, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, 1.35 * right if right > 0 else 1.0)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return save_figure(fig, path)
