"""Step 4: which layers write the top-1 vs top-2 decision at the strongest bifurcation points.

Reads the bifurcations file (this run's step 3 output, or ``attribution.bifurcations``), takes the
``top_n`` points by D, runs one forward of prompt + prefix per point with every residual index captured,
and splits ``logit[top1] − logit[top2]`` by layer with
:func:`~genesis_ps.geometry.attribution.logit_difference` (final norm applied as the model does, its scale
frozen; see that module for what this linear picture leaves out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.geometry.attribution import logit_difference
from genesis_ps.geometry.context import Context

__all__ = ["attribute_point", "run"]


def attribute_point(ctx: Context, prompt_ids: list[int], prefix: list[int], top1: int, top2: int) -> dict[str, Any]:
    """The attribution at the state emitting the token after ``prompt_ids + prefix``."""
    import torch

    from genesis_ps.geometry.access import capture, n_blocks

    model = ctx.lm.hf_model
    dev = next(model.parameters()).device
    top = n_blocks(model)
    ids = torch.tensor([prompt_ids + prefix], dtype=torch.long, device=dev)
    with torch.inference_mode(), capture(model, range(top + 1), last_only=True) as rec:
        out = model(input_ids=ids, use_cache=False)
    residual = [rec.states[i][0, -1] for i in range(top + 1)]
    logits = out.logits[0, -1].float()
    att = logit_difference(model, residual, logits, top1, top2)
    now = torch.topk(logits, 2).indices.tolist()
    return {**att.to_dict(), "model_top2_now": now, "same_top2": now == [top1, top2]}


def run(ctx: Context) -> dict[str, Any]:
    from genesis_ps.geometry import plots
    from genesis_ps.geometry.steps.path import BIFURCATIONS_FILE

    c = ctx.cfg.attribution
    path = Path(c.bifurcations) if c.bifurcations is not None else ctx.out / BIFURCATIONS_FILE
    if not path.is_file():
        raise ConfigError("attribution.bifurcations", f"no bifurcations file at {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = int(ctx.lm.hf_model.get_output_embeddings().weight.shape[0])
    prompt_ids = [int(t) for t in data["prompt_ids"]]
    points = data["points"][: c.top_n]
    rows = []
    with ctx.bar("attribution", len(points)) as advance:
        for p in points:
            prefix = [int(t) for t in p["prefix_tokens"]]
            if any(not 0 <= t < vocab for t in prompt_ids + prefix + [p["top1"], p["top2"]]):
                raise ConfigError("attribution.bifurcations", f"{path} holds token ids outside this model's vocabulary")
            a = attribute_point(ctx, prompt_ids, prefix, int(p["top1"]), int(p["top2"]))
            pos = data["layers"].index(data["plot_layer"]) if data.get("plot_layer") in data.get("layers", []) else -1
            rows.append({"t": p["t"], "D": p["D"][pos], "entropy": p["entropy"], "top1_text": p["top1_text"],
                         "top2_text": p["top2_text"], **a})  # fmt: skip
            advance()
    result: dict[str, Any] = {"source": str(path), "points": rows,
                              "max_gap": max((r["gap"] for r in rows), default=0.0)}  # fmt: skip
    result["plots"] = plots.attribution(result, ctx.out)
    return result
