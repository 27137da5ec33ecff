"""Batched decoding that pools latents from the very forward passes that generate.

:func:`decode` continues each row (prompt + its own prefix, left-padded to one batch) for up to
``max_new`` tokens, greedily (temperature 0) or by sampling at the row's temperature, optionally forcing
the first new token; residual states are captured with hooks (:mod:`~genesis_ps.geometry.access`) and
folded into :class:`~genesis_ps.geometry.pool.Pooler` sums as they are produced. ``max_new=0`` is a
teacher-forced encode of the prefixes (one forward), used for texts another sampler produced. With
``stats``, every step records the entropy of the base distribution (temperature 1), the top-2 tokens and
their logit margin.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genesis_ps.geometry.access import cache_keyword, capture, eos_ids
from genesis_ps.geometry.pool import Pooler, PoolSpec

__all__ = ["Decoded", "StepStats", "decode", "position_stats"]


@dataclass
class StepStats:
    """The base distribution at one emitting state: entropy (nats), top-1 / top-2 token and logits."""

    entropy: float
    top1: int
    top2: int
    margin: float
    """logit(top1) − logit(top2) (≥ 0)."""


@dataclass
class Decoded:
    """Per row: the new tokens (EOS included when hit), whether it ended on EOS, per-step stats; per pool
    spec: latents ``(rows, layers, hidden)`` and how many strided tokens each averages."""

    tokens: list[list[int]]
    eos: list[bool]
    latents: list[np.ndarray]
    counts: list[list[int]]
    stats: list[list[StepStats]] = field(default_factory=list)


def _stats(logits: Any) -> list[StepStats]:
    import torch

    logp = torch.log_softmax(logits.double(), dim=-1)
    ent = -(logp.exp() * logp).sum(dim=-1)
    top = torch.topk(logits, 2, dim=-1)
    return [
        StepStats(float(e), int(i[0]), int(i[1]), float(v[0] - v[1]))
        for e, i, v in zip(ent.tolist(), top.indices.tolist(), top.values.tolist(), strict=True)
    ]


def position_stats(lm: Any, prompt_ids: Sequence[int], tokens: Sequence[int]) -> list[StepStats]:
    """Teacher-forced stats at the state emitting each of ``tokens`` (one forward, full logits)."""
    import torch

    model = lm.hf_model
    dev = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(tokens)], dtype=torch.long, device=dev)
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits[0].float()
    p = len(prompt_ids)
    return _stats(logits[p - 1 : p - 1 + len(tokens)])


def decode(
    lm: Any,
    prompt_ids: Sequence[int],
    prefixes: Sequence[Sequence[int]],
    *,
    max_new: int,
    layers: Sequence[int],
    pools: Sequence[PoolSpec] = (),
    temperatures: float | Sequence[float] = 0.0,
    forced: Sequence[int | None] | None = None,
    stats: bool = False,
    seed: int = 0,
    step: Callable[[], None] | None = None,
) -> Decoded:
    """Continue every ``prompt_ids + prefixes[r]`` by up to ``max_new`` tokens (see the module docstring).

    ``lm`` is a :class:`~genesis_ps.providers.local.LocalModel` (its ``hf_model`` and ``tokenizer`` are
    used). ``step`` is called after each decode step (progress bars)."""
    import torch

    model, n = lm.hf_model, len(prefixes)
    dev = next(model.parameters()).device
    temps = [float(temperatures)] * n if isinstance(temperatures, (int, float)) else [float(t) for t in temperatures]
    force = list(forced) if forced is not None else [None] * n
    stop = eos_ids(model, lm.tokenizer)
    hidden = int(model.get_output_embeddings().weight.shape[1])
    layer_t = tuple(sorted(set(int(x) for x in layers)))
    poolers = [Pooler(spec, n, layer_t, hidden, dev) for spec in pools]
    p_len, pre_lens = len(prompt_ids), [len(p) for p in prefixes]
    seqs = [list(prompt_ids) + [int(t) for t in p] for p in prefixes]
    width = max(len(s) for s in seqs)
    pad = int(lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else next(iter(stop), 0))
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], dtype=torch.long, device=dev)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], dtype=torch.long, device=dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    # generated index emitted by each prefill position: idx - P + 2 for seq index idx (≤ 0 inside the prompt)
    offs = torch.tensor([width - len(s) for s in seqs], device=dev)
    j = torch.arange(width, device=dev)[None, :] - offs[:, None] - p_len + 2
    j = torch.where(mask.bool(), j, torch.zeros_like(j))
    if max_new == 0:  # the last position emits a token that does not exist
        lim = torch.tensor(pre_lens, device=dev)[:, None]
        j = torch.where(j <= lim, j, torch.zeros_like(j))
    kw: dict[str, Any] = {}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kw["logits_to_keep"] = 1
    cache_kw = cache_keyword(model)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    out_tokens: list[list[int]] = [[] for _ in range(n)]
    out_stats: list[list[StepStats]] = [[] for _ in range(n)]
    alive = [True] * n
    eos = [False] * n
    shared = n > 1 and max_new > 0 and not any(pre_lens)  # one prompt prefill, its KV repeated for every row
    with torch.inference_mode(), capture(model, layer_t) as rec:
        rows = slice(0, 1) if shared else slice(None)
        out = model(input_ids=ids[rows], attention_mask=mask[rows], position_ids=pos[rows], use_cache=max_new > 0,
                    **kw)  # fmt: skip
        cache = _cache_of(out)
        if shared and hasattr(cache, "batch_repeat_interleave"):
            cache.batch_repeat_interleave(n)
        elif shared:  # a cache that cannot be repeated: prefill every row after all
            rec.states.clear()
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kw)
            cache, shared = _cache_of(out), False
        states = {k: v.expand(n, -1, -1) for k, v in rec.states.items()} if shared else dict(rec.states)
        for pl in poolers:
            pl.update(states, j)
        rec.states.clear()
        logits = out.logits[:, -1, :].float().expand(n, -1) if shared else out.logits[:, -1, :].float()
        for s in range(1, max_new + 1):
            if stats:
                for r, st in enumerate(_stats(logits)):
                    if alive[r]:
                        out_stats[r].append(st)
            nxt = _choose(logits, temps, force if s == 1 else None, gen)
            for r in range(n):
                if alive[r]:
                    out_tokens[r].append(nxt[r])
                    if nxt[r] in stop:
                        alive[r], eos[r] = False, True
            if step is not None:
                step()
            if s == max_new or not any(alive):
                break
            feed = torch.tensor([[t] for t in nxt], dtype=torch.long, device=dev)
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=dev)], dim=1)
            pos = pos[:, -1:] + 1
            out = model(input_ids=feed, attention_mask=mask, position_ids=pos, use_cache=True, **{cache_kw: cache})
            cache = _cache_of(out)
            jj = torch.tensor([[pre_lens[r] + s + 1 if alive[r] else 0] for r in range(n)], device=dev)
            for pl in poolers:
                pl.update({k: v[:, -1:, :] for k, v in rec.states.items()}, jj)
            rec.states.clear()
            logits = out.logits[:, -1, :].float()
    return Decoded(
        tokens=out_tokens, eos=eos, latents=[p.latents() for p in poolers], counts=[p.counts() for p in poolers],
        stats=out_stats if stats else [],
    )


def _cache_of(out: Any) -> Any:
    """The KV cache a forward returned (``cache`` in transformers 5, ``past_key_values`` before)."""
    keys = out.keys()
    return out["cache"] if "cache" in keys else (out["past_key_values"] if "past_key_values" in keys else None)


def _choose(logits: Any, temps: Sequence[float], forced: Sequence[int | None] | None, gen: Any) -> list[int]:
    """One token per row: forced where given, argmax at temperature 0, else a sample at the row's temperature."""
    import torch

    greedy = logits.argmax(dim=-1).tolist()
    out: list[int] = []
    sampled: dict[int, int] = {}
    hot = [r for r, t in enumerate(temps) if t > 0 and not (forced and forced[r] is not None)]
    if hot:
        t = torch.tensor([temps[r] for r in hot], dtype=torch.float64, device=logits.device)[:, None]
        probs = torch.softmax(logits[hot].double() / t, dim=-1)
        draws = torch.multinomial(probs, 1, generator=gen).view(-1).tolist()
        sampled = dict(zip(hot, draws, strict=True))
    for r in range(len(temps)):
        if forced and forced[r] is not None:
            out.append(int(forced[r]))  # type: ignore[arg-type]
        else:
            out.append(int(sampled.get(r, greedy[r])))
    return out
