"""Step 3: path sensitivity — where a one-token change sends greedy decoding elsewhere.

A greedy baseline of ``path.max_new_tokens`` tokens; at every ``k``-th token index ``t`` two branches
share the prefix ``baseline[:t]``: one takes the greedy (top-1) token, one is forced to the second most
likely, and both decode greedily for ``M`` more tokens, in one batch. D(t) = ‖z_top1 − z_top2‖, the latents
over the M tokens after the branch token (stride ``window_stride``), per layer; next to it the entropy of
the next-token distribution at ``t`` and the top-1/top-2 logit margin. Points sorted by D at the plot layer
are written to ``bifurcations.json`` for step 4.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from genesis_ps.geometry.context import Context
from genesis_ps.geometry.decode import StepStats
from genesis_ps.geometry.pool import PoolSpec

__all__ = ["BIFURCATIONS_FILE", "branch_points", "run"]

BIFURCATIONS_FILE = "bifurcations.json"


def branch_points(
    ctx: Context, text: Sequence[int], stats: Sequence[StepStats], points: Sequence[int], *, horizon: int,
    window_stride: int, label: str, seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """D(t) per layer for each ``t`` in ``points`` along ``text``; ``stats[t]`` is the base distribution
    emitting ``text[t]``. Each branch pair is two rows of one batch. A branch whose forced token is EOS has
    no continuation, so its D is None (``empty_window``)."""
    prefixes: list[list[int]] = []
    forced: list[int | None] = []
    starts: list[int] = []
    for t in points:
        prefixes += [list(text[:t])] * 2
        forced += [stats[t].top1, stats[t].top2]
        starts += [t + 1, t + 1]
    d = ctx.decode(prefixes, max_new=horizon + 1, label=label, chunk=16, forced=forced,
                   pools=[PoolSpec(window_stride, start=tuple(starts))], seed=seed)  # fmt: skip
    z = d.latents[0]
    out = []
    for i, t in enumerate(points):
        a, b = d.tokens[2 * i], d.tokens[2 * i + 1]
        dist = np.linalg.norm(z[2 * i] - z[2 * i + 1], axis=-1)
        empty = bool(np.isnan(dist).any())
        same = sum(1 for x, y in zip(a[1:], b[1:], strict=False) if x == y)
        m = min(len(a), len(text) - t)
        st = stats[t]
        out.append({
            "t": int(t), "entropy": st.entropy, "margin": st.margin, "top1": st.top1, "top2": st.top2,
            "top1_text": ctx.text([st.top1]), "top2_text": ctx.text([st.top2]),
            "D": None if empty else dist.tolist(), "empty_window": empty,
            "continuations_agree": same / max(1, min(len(a), len(b)) - 1),
            "top1_branch": ctx.text(a)[:160], "top2_branch": ctx.text(b)[:160],
            "reproduces_text": list(a[:m]) == list(text[t : t + m]),
        })  # fmt: skip
    return out


def run(ctx: Context) -> dict[str, Any]:
    from genesis_ps.geometry import plots

    c = ctx.cfg.path
    base = ctx.decode([[]], max_new=c.max_new_tokens, label="path: greedy baseline", stats=True)
    tokens, stats = base.tokens[0], base.stats[0]
    points = list(range(c.every, len(tokens), c.every))
    pos = ctx.layer_index(ctx.plot_layer)
    rows = branch_points(ctx, tokens, stats, points, horizon=c.horizon, window_stride=c.window_stride,
                         label="path: branches")  # fmt: skip
    ranked = sorted((r for r in rows if r["D"] is not None), key=lambda r: -r["D"][pos])
    bif = {
        "model": ctx.model_name, "prompt": ctx.problem.prompt, "prompt_ids": list(ctx.prompt_ids),
        "baseline_tokens": list(tokens), "layers": list(ctx.layers), "plot_layer": ctx.plot_layer,
        "points": [{**r, "prefix_tokens": list(tokens[: r["t"]])} for r in ranked],
    }  # fmt: skip
    (ctx.out / BIFURCATIONS_FILE).write_text(json.dumps(bif, indent=1), encoding="utf-8")
    ent = [r["entropy"] for r in rows]
    dd = [r["D"][pos] if r["D"] is not None else None for r in rows]
    result: dict[str, Any] = {
        "baseline_length": len(tokens), "baseline_text": ctx.text(tokens), "every": c.every, "horizon": c.horizon,
        "window_stride": c.window_stride, "layers": list(ctx.layers), "plot_layer": ctx.plot_layer,
        "points": rows, "top": [{"t": r["t"], "D": r["D"][pos], "entropy": r["entropy"], "margin": r["margin"],
                                 "top1_text": r["top1_text"], "top2_text": r["top2_text"]} for r in ranked[: c.top_n]],
        "bifurcations_file": BIFURCATIONS_FILE,
        "all_top1_branches_reproduce_baseline": all(r["reproduces_text"] for r in rows),
        "baseline_entropy": [s.entropy for s in stats], "baseline_margin": [s.margin for s in stats],
    }  # fmt: skip
    if len(rows) >= 3:
        from genesis_ps.geometry.stats import correlation

        result["corr_D_entropy"] = correlation(dd, ent)
        result["corr_D_margin"] = correlation(dd, [r["margin"] for r in rows])
    result["plots"] = plots.path(result, ctx.out)
    return result
