"""Step 6: the bridge back to sampling — does MH change the text where the path is sensitive?

For each MH chain's final text: at every ``bridge.every``-th token index t, the path sensitivity D(t)
(greedy top-1 vs top-2 branches, as in step 3, but along the MH text) and the next-token entropy at t
(teacher-forced); and the number of accepted MH proposals whose change to the text begins in
``[t, t + every)`` *and whose context survives into the final text* (a change made on a prefix that a
later cut replaced is about a text that no longer exists). Spearman and Pearson correlations over all
(chain, t) points: D vs changes, entropy vs changes, D vs entropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genesis_ps.geometry.checks import bridge_setting
from genesis_ps.geometry.context import Context
from genesis_ps.geometry.decode import position_stats
from genesis_ps.geometry.stats import correlation
from genesis_ps.geometry.steps.path import branch_points

__all__ = ["run", "surviving_changes"]


def surviving_changes(final: list[int], cuts: list[Any], chain: int) -> list[int]:
    """Token indices where accepted proposals of ``chain`` changed the text, among those whose context
    (the tokens before the change) is still the final text's."""
    out = []
    for c in cuts:
        if c.chain != chain or not c.accepted or c.change is None:
            continue
        if tuple(final[: c.change]) == c.context:
            out.append(int(c.change))
    return out


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def run(ctx: Context) -> dict[str, Any]:
    from genesis_ps.geometry import plots

    b = ctx.cfg.bridge
    setting = bridge_setting(ctx.cfg)
    n = b.n or ctx.cfg.variance.n
    pr = ctx.power(setting, n)
    pos = ctx.layer_index(ctx.plot_layer)
    points: list[dict[str, Any]] = []
    with ctx.bar("bridge: chains", n) as advance:
        for ch, text in enumerate(pr.tokens):
            stats = position_stats(ctx.lm, ctx.prompt_ids, text)
            grid = list(range(0, len(text), b.every))
            rows = branch_points(ctx, text, stats, grid, horizon=b.horizon, window_stride=b.window_stride,
                                 label=f"bridge: chain {ch + 1} branches")  # fmt: skip
            changes = surviving_changes(text, pr.cuts, ch)
            for r in rows:
                t = r["t"]
                points.append({"chain": ch, "t": t, "D": r["D"][pos] if r["D"] is not None else None,
                               "entropy": r["entropy"], "margin": r["margin"],
                               "changes": sum(1 for c in changes if t <= c < t + b.every)})  # fmt: skip
            advance()
    accepted = [c for c in pr.cuts if c.accepted and c.change is not None]
    surviving = sum(len(surviving_changes(t, pr.cuts, ch)) for ch, t in enumerate(pr.tokens))
    dd, hh, cc = ([p[key] for p in points] for key in ("D", "entropy", "changes"))
    result: dict[str, Any] = {
        "setting": setting.model_dump(), "label": setting.label, "chains": n, "every": b.every, "horizon": b.horizon,
        "layer": ctx.plot_layer, "proposals": len(pr.cuts), "accepted_changes": len(accepted),
        "surviving_changes": surviving, "acceptance": pr.acceptance, "points": points,
        "corr_D_changes": correlation(dd, cc), "corr_entropy_changes": correlation(hh, cc),
        "corr_D_entropy": correlation(dd, hh),
        "mean_D_where_changed": _mean([d for d, c in zip(dd, cc, strict=True) if c > 0]),
        "mean_D_where_unchanged": _mean([d for d, c in zip(dd, cc, strict=True) if c == 0]),
        "points_without_continuation": sum(1 for d in dd if d is None),
    }  # fmt: skip
    result["plots"] = plots.bridge(result, ctx.out)
    return result
