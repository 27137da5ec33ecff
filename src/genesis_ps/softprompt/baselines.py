"""Baselines, measured for every pair before anything is optimised (no gradients).

- ``random``: the target after ``[mode; R]``, R being K Gaussian vectors with the per-dimension mean and
  standard deviation of the token-embedding matrix — the right shape and scale, no information. Mean over
  ``draws`` draws.
- ``single_token``: the target after ``[mode; e]``, e the embedding of one random vocabulary token (mean over
  ``draws``): close to the model's unconditional loss.
- ``full_context`` (answer only): L(A | Q), the question given as real tokens — the best case a prompt of
  the model's own tokens reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genesis_ps.softprompt.loss import score_all

__all__ = ["measure_baselines"]


def measure_baselines(
    model: Any,
    embeddings: Any,
    modes: Any,
    q_ids: Sequence[tuple[int, ...]],
    a_ids: Sequence[tuple[int, ...]],
    q_prompt_ids: Sequence[tuple[int, ...]],
    *,
    k: int,
    seed: int,
    draws: int = 3,
    batch: int = 32,
) -> list[dict[str, float]]:
    """Per pair: ``random_q``, ``random_a``, ``single_token_q``, ``single_token_a``, ``full_context_a``.
    ``q_prompt_ids`` is the question without EOS (the full-context prompt)."""
    import torch

    g = torch.Generator().manual_seed(seed + 7_919)
    e = embeddings.detach()
    mean, std = e.mean(0), e.std(0)
    prompts, targets, keys = [], [], []
    for i, (q, a) in enumerate(zip(q_ids, a_ids, strict=True)):
        for d in range(draws):
            r = (mean + std * torch.randn(k, e.shape[1], generator=g).to(e.device)).to(e.dtype)
            tok = e[int(torch.randint(0, e.shape[0], (1,), generator=g))].unsqueeze(0)
            for mode, tgt, name in ((0, q, "q"), (1, a, "a")):
                prompts.append(torch.cat([modes[mode].unsqueeze(0), r]))
                targets.append(tgt)
                keys.append((i, f"random_{name}", d))
                prompts.append(torch.cat([modes[mode].unsqueeze(0), tok]))
                targets.append(tgt)
                keys.append((i, f"single_token_{name}", d))
        prompts.append(e[torch.tensor(q_prompt_ids[i], device=e.device)])
        targets.append(a)
        keys.append((i, "full_context_a", 0))
    losses, _ = score_all(model, prompts, targets, batch=batch)
    sums: list[dict[str, list[float]]] = [{} for _ in q_ids]
    for (i, name, _d), loss in zip(keys, losses, strict=True):
        sums[i].setdefault(name, []).append(loss)
    return [{name: sum(v) / len(v) for name, v in s.items()} for s in sums]
