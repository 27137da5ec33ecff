"""Step 1: sampling variance of z against layer and generation length, per sampling setting.

For each temperature, ``n`` completions sampled by :func:`~genesis_ps.geometry.decode.decode` (all
temperatures in one batch; z pooled from the generating forwards); for each power-sampling setting, ``n``
completions from :mod:`~genesis_ps.geometry.power`, read back by one teacher-forced forward. Variance is
the trace of the covariance of z over the ``n`` completions, at every layer and every checkpoint (z over
the first ``c`` generated tokens; a completion that ended earlier keeps its final z). The relative variance
divides by the mean squared norm of z, which grows with depth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genesis_ps.geometry.context import Context
from genesis_ps.geometry.pool import PoolSpec, bootstrap_variance_ratio, relative_variance, total_variance

__all__ = ["compare_power_to_temperature", "run"]


def _summary(ctx: Context, label: str, kind: str, z_by_c: dict[int, np.ndarray], tokens: list[list[int]],
             eos: list[bool], **extra: Any) -> dict[str, Any]:  # fmt: skip
    lengths = [len(t) for t in tokens]
    return {
        "label": label, "kind": kind, **extra,
        "checkpoints": {
            str(c): {"variance": total_variance(z).tolist(), "relative": relative_variance(z).tolist(),
                     "still_generating": sum(1 for n in lengths if n >= c)}
            for c, z in z_by_c.items()
        },
        "mean_length": float(np.mean(lengths)), "eos_rate": float(np.mean(eos)),
        "distinct_texts": len({tuple(t) for t in tokens}),
        "texts": [ctx.text(t) for t in tokens],
    }  # fmt: skip


def compare_power_to_temperature(
    settings: list[dict[str, Any]], layer_pos: int, latents: dict[tuple[str, str], np.ndarray], seed: int = 0
) -> list[dict[str, Any]]:
    """For each MH / SMC setting at α with a temperature setting at 1/α: the two variances side by side,
    with a bootstrap 95% interval of their ratio (completions resampled within each setting)."""
    out = []
    temps = {round(s["temperature"], 9): s for s in settings if s["kind"] == "temperature"}
    for s in settings:
        if s["kind"] != "power":
            continue
        t = temps.get(round(1.0 / s["alpha"], 9))
        if t is None:
            continue
        common = sorted(set(s["checkpoints"]) & set(t["checkpoints"]), key=int)
        for c in common:
            vp = s["checkpoints"][c]["variance"]
            vt = t["checkpoints"][c]["variance"]
            ratio = [a / b if b > 0 else None for a, b in zip(vp, vt, strict=True)]
            lo, hi = bootstrap_variance_ratio(latents[(s["label"], c)], latents[(t["label"], c)], seed=seed)
            out.append({
                "power": s["label"], "temperature": t["label"], "checkpoint": int(c),
                "variance_power": vp[layer_pos], "variance_temperature": vt[layer_pos],
                "ratio_at_plot_layer": ratio[layer_pos],
                "ratio_ci95_at_plot_layer": [float(lo[layer_pos]), float(hi[layer_pos])],
                "layers_ci_above_1": int((lo > 1).sum()), "layers_ci_below_1": int((hi < 1).sum()),
                "layers_power_higher": sum(1 for a, b in zip(vp, vt, strict=True) if a > b), "layers": len(vp),
            })  # fmt: skip
    return out


def run(ctx: Context) -> dict[str, Any]:
    from genesis_ps.geometry import plots

    v, k = ctx.cfg.variance, ctx.cfg.stride
    cps = sorted(set(v.checkpoints))
    settings: list[dict[str, Any]] = []
    latents: dict[tuple[str, str], np.ndarray] = {}
    if v.temperatures:
        temps = [t for t in v.temperatures for _ in range(v.n)]
        d = ctx.decode([[]] * len(temps), max_new=max(cps), label="variance: temperatures", chunk=32,
                       pools=[PoolSpec(k, until=c) for c in cps], temperatures=temps,
                       seed=ctx.seed("variance"))  # fmt: skip
        for i, t in enumerate(v.temperatures):
            rows = slice(i * v.n, (i + 1) * v.n)
            z_by_c = {c: d.latents[j][rows] for j, c in enumerate(cps)}
            latents.update({(f"T={t:g}", str(c)): z for c, z in z_by_c.items()})
            settings.append(_summary(ctx, f"T={t:g}", "temperature", z_by_c, d.tokens[rows], d.eos[rows],
                                     temperature=t))  # fmt: skip
    for s in v.power:
        run_ = ctx.power(s, v.n)
        mine = [c for c in cps if c <= s.max_new_tokens]
        d = ctx.decode(run_.tokens, max_new=0, label=f"variance: encode {s.label}", chunk=8,
                       pools=[PoolSpec(k, until=c) for c in mine])  # fmt: skip
        eos = [bool(t) and t[-1] in ctx.eos for t in run_.tokens]
        returned = sum(len(t) for t in run_.tokens)
        latents.update({(s.label, str(c)): d.latents[j] for j, c in enumerate(mine)})
        settings.append(_summary(
            ctx, s.label, "power", {c: d.latents[j] for j, c in enumerate(mine)}, run_.tokens, eos,
            alpha=s.alpha, method=s.method, setting=s.model_dump(), tokens_generated=run_.tokens_generated,
            cost_multiplier=run_.tokens_generated / max(returned, 1) if run_.tokens_generated >= 0 else None,
            acceptance=run_.acceptance,
            latency_s=run_.latency_s,
        ))  # fmt: skip
    pos = ctx.layer_index(ctx.plot_layer)
    cmp = compare_power_to_temperature(settings, pos, latents, ctx.seed("bootstrap"))
    result = {"n": v.n, "stride": k, "checkpoints": cps, "layers": list(ctx.layers), "plot_layer": ctx.plot_layer,
              "settings": settings, "power_vs_temperature": cmp}  # fmt: skip
    result["plots"] = plots.variance(result, ctx.out)
    return result
