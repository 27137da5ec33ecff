"""Stage 3: greedy decoding from ``[mode; c*]`` and how well it matches the target.

Decoding runs in lockstep for a batch of prompts of equal length with the model's KV cache (the cache
keyword is read from the model's ``forward`` signature: ``cache`` in transformers 5, ``past_key_values``
before), and stops at EOS or after ``max_new`` tokens. Exact match compares the decoded text with the
target text after stripping surrounding whitespace; token F1 is the multiset overlap of the model's
tokens (EOS excluded). A pair *passes* when both Q and A match exactly, is *partial* when not but the
mean of its two F1 scores is at least 0.5, and *fails* otherwise.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["greedy_decode", "token_f1", "verdict"]


def token_f1(pred: Sequence[int], ref: Sequence[int]) -> float:
    """F1 of the token multisets (1.0 when both are empty)."""
    if not pred and not ref:
        return 1.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def verdict(q_exact: bool, a_exact: bool, q_f1: float, a_f1: float) -> str:
    """``pass`` / ``partial`` / ``fail`` by the rule above."""
    if q_exact and a_exact:
        return "pass"
    return "partial" if (q_f1 + a_f1) / 2 >= 0.5 else "fail"


def _cache_kw(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def greedy_decode(
    model: Any, prompts: Sequence[Any], *, max_new: int, eos: int | None, batch: int = 32
) -> list[list[int]]:
    """Greedy tokens after each ``(P, d)`` prompt (all of one length within a call), EOS excluded."""
    import torch

    kw = _cache_kw(model)
    emb = model.get_input_embeddings()
    out_all: list[list[int]] = []
    with torch.no_grad():
        for i in range(0, len(prompts), batch):
            x = torch.stack(list(prompts[i : i + batch])).to(emb.weight.dtype)
            n = x.shape[0]
            toks: list[list[int]] = [[] for _ in range(n)]
            live = [True] * n
            out = model(inputs_embeds=x, use_cache=True, logits_to_keep=1)
            for _ in range(max_new):
                nxt = out.logits[:, -1, :].argmax(-1)
                for r in range(n):
                    if live[r]:
                        t = int(nxt[r])
                        if eos is not None and t == eos:
                            live[r] = False
                        else:
                            toks[r].append(t)
                if not any(live):
                    break
                cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
                out = model(inputs_embeds=emb(nxt.view(n, 1)), use_cache=True, logits_to_keep=1, **{kw: cache})
            out_all += toks
    return out_all
