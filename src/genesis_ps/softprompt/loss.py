"""The loss: cross-entropy of a target sequence after a prompt given as embeddings.

For each sequence ``i`` the model reads ``inputs_embeds = [P_i; embed(target_i)]``; the position just before
each target token predicts it, so the logits at positions ``len(P_i) - 1 … len(P_i) + len(target_i) - 2`` are
scored against ``target_i`` and nothing else (no prompt position, no padding). Sequences of different
lengths are right-padded into one batch: under causal attention a real position never attends to the padding
after it, so no attention mask is needed and every row's positions start at 0, exactly as if it ran alone.
Only the logits of target positions are computed (``logits_to_keep``), which spares most of the output
projection. The model's weights are frozen by :func:`freeze`; gradients flow only into the prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SeqScores", "freeze", "score_all", "target_scores"]


@dataclass(frozen=True)
class SeqScores:
    """Per-sequence scores of one batched forward. ``loss`` keeps its graph (mean nats per target token);
    ``full`` is the same loss over the whole target, detached (they differ only when ``upto`` truncates the
    scored part); ``token_acc`` is teacher-forced argmax accuracy over the whole target; ``leading`` counts
    the target tokens the argmax gets right before the first miss — when it equals the target's length,
    greedy decoding from the prompt reproduces the target exactly."""

    loss: Any
    full: Any
    token_acc: Any
    leading: Any


def freeze(model: Any) -> Any:
    """Put ``model`` in eval mode with ``requires_grad=False`` on every weight and any stored weight
    gradient dropped (none is ever stored again); returns it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    return model


def target_scores(
    model: Any, prompts: Sequence[Any], targets: Sequence[Sequence[int]], upto: Sequence[int] | None = None
) -> SeqScores:
    """Score ``targets[i]`` after ``prompts[i]`` (a ``(P_i, d)`` tensor) for every ``i`` in one forward.

    ``upto[i]`` limits the differentiable ``loss`` to the first ``upto[i]`` target tokens (the progressive
    schedule); the later tokens still run through the model, so ``full`` and ``leading`` cover the whole
    target at no extra forward. Every target must be non-empty. Returns a :class:`SeqScores` of ``(N,)``
    tensors.
    """
    import torch

    if len(prompts) != len(targets) or not prompts:
        raise ValueError("prompts and targets must be non-empty and of equal length")
    emb = model.get_input_embeddings()
    device = emb.weight.device
    p_lens = [int(p.shape[0]) for p in prompts]
    t_lens = [len(t) for t in targets]
    if min(t_lens) < 1 or min(p_lens) < 1:
        raise ValueError("every prompt and every target needs at least one position")
    t_max = max(t_lens)
    ids = torch.zeros(len(targets), t_max, dtype=torch.long, device=device)
    for i, t in enumerate(targets):
        ids[i, : len(t)] = torch.tensor(list(t), dtype=torch.long, device=device)
    t_emb = emb(ids)
    width = max(p + t for p, t in zip(p_lens, t_lens, strict=True))
    rows = []
    for i, p in enumerate(prompts):
        row = torch.cat([p.to(t_emb.dtype), t_emb[i, : t_lens[i]]], dim=0)
        pad = width - row.shape[0]
        if pad:
            row = torch.cat([row, row.new_zeros(pad, row.shape[1])], dim=0)
        rows.append(row)
    x = torch.stack(rows)
    # positions predicting target token j of row i: p_i - 1 + j; keep only the span they cover
    lo, hi = min(p_lens) - 1, max(p + t for p, t in zip(p_lens, t_lens, strict=True)) - 1
    keep = torch.arange(lo, hi, device=device)
    out = model(inputs_embeds=x, logits_to_keep=keep, use_cache=False)
    logits = out.logits.float()
    idx = torch.zeros_like(ids)
    mask = torch.zeros(ids.shape, dtype=torch.bool, device=device)
    for i, (pl, tl) in enumerate(zip(p_lens, t_lens, strict=True)):
        idx[i, :tl] = torch.arange(pl - 1 - lo, pl - 1 - lo + tl, device=device)
        mask[i, :tl] = True
    picked = logits.gather(1, idx.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    logp = torch.log_softmax(picked, dim=-1)
    nll = -logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    n_tok = mask.sum(1)
    full = (nll * mask).sum(1) / n_tok
    if upto is None:
        loss = full
    else:
        cut = torch.tensor([max(1, min(int(u), t)) for u, t in zip(upto, t_lens, strict=True)], device=device)
        part = mask & (torch.arange(t_max, device=device).unsqueeze(0) < cut.unsqueeze(1))
        loss = (nll * part).sum(1) / cut
    hit = (picked.argmax(-1) == ids) & mask
    acc = hit.sum(1).float() / n_tok
    miss = (~hit) & mask
    first_miss = torch.where(miss.any(1), miss.float().argmax(1), n_tok)
    return SeqScores(loss=loss, full=full.detach(), token_acc=acc.detach(), leading=first_miss.detach())


def score_all(
    model: Any, prompts: Sequence[Any], targets: Sequence[Sequence[int]], *, batch: int = 32
) -> tuple[list[float], list[int]]:
    """(mean loss, leading correct tokens) of every sequence, without gradients, ``batch`` at a time."""
    import torch

    losses: list[float] = []
    leading: list[int] = []
    with torch.no_grad():
        for i in range(0, len(prompts), batch):
            sc = target_scores(model, prompts[i : i + batch], targets[i : i + batch])
            losses += [float(x) for x in sc.full.tolist()]
            leading += [int(x) for x in sc.leading.tolist()]
    return losses, leading
