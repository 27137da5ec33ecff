"""Optimising content vectors: many restarts at once, each with its own Adam state and stopping rule.

A :class:`Job` is one restart of one pair: K content vectors ``c`` and the targets they must regenerate, each
read after its mode vector (``[Q_mode; c] -> Q``, ``[A_mode; c] -> A``, paraphrases alike). :func:`optimise`
keeps up to ``batch`` jobs active and runs all their sequences through the model in one forward per step;
a finished job leaves the batch and the next queued one takes its place (continuous batching), so the tail
of slow jobs does not idle the rest. Adam is elementwise, so one update over the stacked rows equals an
independent optimiser per job; it is written out here so each job keeps its own step count and schedule.

A job stops when greedy decoding would reproduce every target (the argmax is right at every position) and
each target's loss is below ``stop_loss`` (``"exact"``), after ``patience`` steps without a 1% gain
(``"plateau"``), at ``steps`` (``"steps"``), or — with ``first_success`` — when another restart of its pair
stopped ``"exact"`` (``"sibling"``). The vectors kept are the best seen (lowest full-target training loss).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.softprompt.config import SoftPromptConfig
from genesis_ps.softprompt.loss import target_scores

__all__ = ["Job", "JobResult", "Target", "init_vectors", "optimise"]

_BETAS, _EPS = (0.9, 0.999), 1e-8


@dataclass(frozen=True)
class Target:
    """One sequence a job must regenerate: ``mode`` 0 is Q_mode, 1 is A_mode."""

    kind: str
    mode: int
    ids: tuple[int, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class Job:
    pair: int
    restart: int
    targets: tuple[Target, ...]


@dataclass
class JobResult:
    """One finished restart. ``curve`` is the weighted full-target training loss per step; ``exact_step``
    the first step (1-based) at which greedy decoding would have reproduced every target."""

    pair: int
    restart: int
    k: int
    curve: list[float]
    stop: str
    steps: int
    exact_step: int | None
    seconds: float
    vectors: Any = field(repr=False)


@dataclass
class _State:
    job: Job
    c: Any
    m: Any
    v: Any
    upto: list[int]
    best: float = float("inf")
    best_c: Any = None
    since: int = 0
    t: int = 0
    exact_step: int | None = None
    seconds: float = 0.0
    curve: list[float] = field(default_factory=list)


def init_vectors(embeddings: Any, k: int, *, seed: int, pair: int, restart: int) -> Any:
    """``k`` rows of the embedding matrix at random token ids, seeded by (seed, pair, restart): each restart's
    start is reproducible on its own, whatever else runs with it."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + pair * 1_009 + restart)
    ids = torch.randint(0, embeddings.shape[0], (k,), generator=g)
    return embeddings[ids.to(embeddings.device)].detach().clone()


def _adam(x: Any, grad: Any, m: Any, v: Any, t: int, lr: float) -> None:
    m.mul_(_BETAS[0]).add_(grad, alpha=1 - _BETAS[0])
    v.mul_(_BETAS[1]).addcmul_(grad, grad, value=1 - _BETAS[1])
    mhat = m / (1 - _BETAS[0] ** t)
    vhat = v / (1 - _BETAS[1] ** t)
    x.data.add_(-lr * mhat / (vhat.sqrt() + _EPS))


def optimise(
    model: Any,
    embeddings: Any,
    modes: Any,
    jobs: list[Job],
    cfg: SoftPromptConfig,
    *,
    k: int,
    learn_modes: bool = False,
    on_step: Callable[[int], None] | None = None,
    on_done: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run every job to its stop; results in job order. ``modes`` is a ``(2, d)`` tensor; with
    ``learn_modes`` it is trained in place with the jobs (one shared Adam), otherwise it stays fixed.
    ``on_step(active)`` is called after each batched step, ``on_done`` as each job finishes."""
    import torch

    queue = list(range(len(jobs)))
    active: list[_State] = []
    done: dict[int, JobResult] = {}
    succeeded: set[int] = set()
    mm = torch.zeros_like(modes) if learn_modes else None
    mv = torch.zeros_like(modes) if learn_modes else None
    mode_t = 0
    order = {id(j): i for i, j in enumerate(jobs)}

    def finish(st: _State, why: str) -> None:
        res = JobResult(pair=st.job.pair, restart=st.job.restart, k=k, curve=st.curve, stop=why, steps=st.t,
                        exact_step=st.exact_step, seconds=st.seconds,
                        vectors=(st.best_c if st.best_c is not None else st.c.detach()).clone())
        done[order[id(st.job)]] = res
        if why == "exact":
            succeeded.add(st.job.pair)
        if on_done is not None:
            on_done(res)

    while queue or active:
        while queue and len(active) < cfg.batch:
            job = jobs[queue.pop(0)]
            if cfg.first_success and job.pair in succeeded:
                finish(_State(job, init_vectors(embeddings, k, seed=cfg.seed, pair=job.pair, restart=job.restart),
                              None, None, []), "sibling")
                continue
            c = init_vectors(embeddings, k, seed=cfg.seed, pair=job.pair, restart=job.restart).requires_grad_(True)
            upto = [1 if cfg.progressive else len(t.ids) for t in job.targets]
            active.append(_State(job, c, torch.zeros_like(c), torch.zeros_like(c), upto))
        if learn_modes:
            modes.requires_grad_(True)
        t0 = time.perf_counter()
        prompts, targets, upto, owner = [], [], [], []
        for si, st in enumerate(active):
            for ti, tg in enumerate(st.job.targets):
                prompts.append(torch.cat([modes[tg.mode].unsqueeze(0), st.c], dim=0))
                targets.append(tg.ids)
                upto.append(st.upto[ti])
                owner.append((si, ti))
        sc = target_scores(model, prompts, targets, upto if cfg.progressive else None)
        weights = torch.tensor([active[si].job.targets[ti].weight for si, ti in owner], device=sc.loss.device)
        (sc.loss * weights).sum().backward()
        full, leading = sc.full.tolist(), sc.leading.tolist()
        dt = time.perf_counter() - t0
        keep: list[_State] = []
        for si, st in enumerate(active):
            st.t += 1
            st.seconds += dt
            _adam(st.c, st.c.grad, st.m, st.v, st.t, cfg.lr_at(st.t - 1))
            st.c.grad = None
            rows = [j for j, (s2, _) in enumerate(owner) if s2 == si]
            tgs = st.job.targets
            joint = sum(tgs[ti].weight * full[j] for ti, j in enumerate(rows))
            st.curve.append(float(joint))
            exact = all(leading[j] >= len(tgs[ti].ids) for ti, j in enumerate(rows))
            if exact and st.exact_step is None:
                st.exact_step = st.t
            for ti, j in enumerate(rows):
                if leading[j] >= st.upto[ti]:
                    st.upto[ti] = min(st.upto[ti] + 1, len(tgs[ti].ids))
            if joint < st.best:
                if joint < st.best * 0.99:
                    st.since = 0
                st.best, st.best_c = joint, st.c.detach().clone()
            st.since += 1
            if exact and all(full[j] < cfg.stop_loss for j in rows):
                finish(st, "exact")
            elif cfg.first_success and st.job.pair in succeeded:
                finish(st, "sibling")
            elif st.since > cfg.patience:
                finish(st, "plateau")
            elif st.t >= cfg.steps:
                finish(st, "steps")
            else:
                keep.append(st)
        if learn_modes:
            mode_t += 1
            assert mm is not None and mv is not None
            _adam(modes, modes.grad, mm, mv, mode_t, cfg.lr_at(min(mode_t - 1, cfg.steps - 1)))
            modes.grad = None
            modes.requires_grad_(False)
        active = keep
        if on_step is not None:
            on_step(len(active))
    return [done[i] for i in range(len(jobs))]
