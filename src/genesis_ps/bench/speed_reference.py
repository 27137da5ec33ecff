"""The baselines ``bench speed`` measures against: plain Hugging Face ``generate`` sampling, and block-wise
MH done the reference code's way (every proposal re-encodes prompt + kept prefix through ``generate``)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

__all__ = ["hf_generate", "reference_mh"]


def hf_generate(model: Any, prompt: Any, n: int, temperature: float, seed: int) -> int:
    """Plain HF ``generate`` sampling (no truncation); returns the number of new tokens."""
    import torch

    ids = torch.tensor([list(model.encode_prompt(prompt))], device=model._engine.device)
    torch.manual_seed(seed)
    eos = model.capabilities.eos_token_id
    with torch.inference_mode():
        out = model.hf_model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
            max_new_tokens=n, eos_token_id=eos, pad_token_id=eos,
        )
    return int(out.shape[1] - ids.shape[1])


def _hf_propose(
    model: Any, ids: list[int], n: int, tau: float, seed: int
) -> tuple[list[int], list[float], list[float], bool]:
    """One reference-style proposal: ``generate`` from scratch on prompt + prefix ``ids``; exact log p from
    the raw logits, exact log q from the processed scores (logits / τ; no truncation)."""
    import torch

    eos = model.capabilities.eos_token_id
    x = torch.tensor([ids], device=model._engine.device)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.hf_model.generate(
            x, attention_mask=torch.ones_like(x), do_sample=True, temperature=tau, top_k=0, top_p=1.0,
            max_new_tokens=n, eos_token_id=eos, pad_token_id=eos,
            output_scores=True, output_logits=True, return_dict_in_generate=True,
        )
        toks = out.sequences[0, len(ids):]
        logits = torch.stack(out.logits, 0)[:, 0].float()
        scores = torch.stack(out.scores, 0)[:, 0].float()
        k = min(len(toks), logits.shape[0])
        toks = toks[:k]
        idx = toks.view(-1, 1)
        lp = torch.log_softmax(logits[:k], -1).gather(-1, idx).view(-1).tolist()
        lq = torch.log_softmax(scores[:k], -1).gather(-1, idx).view(-1).tolist()
    tl = [int(t) for t in toks.tolist()]
    return tl, lp, lq, bool(tl and tl[-1] == eos)


def reference_mh(
    model: Any, prompt: Any, *, alpha: float, block_size: int, n_mcmc: int, max_new_tokens: int, seed: int
) -> dict[str, Any]:
    """Block-wise MH with the same schedule and acceptance rule as :mod:`genesis_ps.sampling.mh`
    (stage-limited proposals, length correction), but every proposal made the reference code's way."""
    from genesis_ps.sampling.mh import mh_log_ratio, stage_limits

    rng = np.random.default_rng(seed)
    p_ids = list(model.encode_prompt(prompt))
    tau = 1.0 / alpha
    toks: list[int] = []
    lp: list[float] = []
    lq: list[float] = []
    eos = False
    generated = proposals = accepted = 0
    t0 = time.perf_counter()
    for limit in stage_limits(max_new_tokens, block_size):
        if not eos and len(toks) < limit:
            nt, nlp, nlq, eos = _hf_propose(model, p_ids + toks, limit - len(toks), tau, int(rng.integers(2**31)))
            toks, lp, lq = toks + nt, lp + nlp, lq + nlq
            generated += len(nt)
        for _ in range(n_mcmc):
            t = int(rng.integers(0, len(toks)))
            nt, nlp, nlq, neos = _hf_propose(model, p_ids + toks[:t], limit - t, tau, int(rng.integers(2**31)))
            generated += len(nt)
            proposals += 1
            lr = mh_log_ratio(alpha, lp[t:], lq[t:], nlp, nlq, cur_len=len(toks), prop_len=t + len(nt))
            if lr >= 0 or rng.random() < math.exp(lr):
                toks, lp, lq, eos = toks[:t] + nt, lp[:t] + nlp, lq[:t] + nlq, neos
                accepted += 1
    return {
        "seconds": time.perf_counter() - t0,
        "tokens_generated": generated,
        "tokens_returned": len(toks),
        "acceptance_rate": accepted / proposals if proposals else None,
        "text": model.decode(toks),
    }
