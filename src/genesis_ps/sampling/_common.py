"""Pieces the samplers share: the chain/particle state, the metered ``extend`` call (budget, per-call
seeds, batching into ``max_batch`` chunks requested concurrently, validation), selection bookkeeping and
the result record."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from genesis_ps.errors import CapabilityError, MalformedResponseError
from genesis_ps.sampling.params import Budget
from genesis_ps.sampling.protocol import Prompt, Segment, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Target

__all__ = ["EMPTY", "Best", "Meter", "State", "make_result", "new_seed", "state_text"]


@dataclass(frozen=True, slots=True)
class State:
    """A generated sequence with the per-token log p / log q it was sampled with (never recomputed)."""

    tokens: tuple[int, ...] = ()
    logp: tuple[float, ...] = ()
    logq: tuple[float, ...] = ()
    eos: bool = False
    text: str | None = None
    """Set only for providers that return text instead of token ids."""

    def __len__(self) -> int:
        return len(self.logp)

    @property
    def logp_sum(self) -> float:
        return math.fsum(self.logp)

    @property
    def logq_sum(self) -> float:
        return math.fsum(self.logq)

    def cut(self, t: int) -> State:
        """The first ``t`` tokens (a prefix never ends on EOS)."""
        if self.text is not None and t:
            raise CapabilityError("a text-only state cannot be cut inside; the model gives no token ids")
        return State(self.tokens[:t], self.logp[:t], self.logq[:t], False)

    def splice(self, t: int, seg: Segment) -> State:
        """``self.cut(t).grow(seg)``, fast for token states (the MH inner loop)."""
        if self.text is None and seg.text is None:
            return State(self.tokens[:t] + seg.tokens, self.logp[:t] + seg.logp, self.logq[:t] + seg.logq, seg.eos)
        return self.cut(t).grow(seg)

    def grow(self, seg: Segment) -> State:
        """This state followed by a sampled segment."""
        if seg.text is not None and not seg.tokens:
            if self.tokens:
                raise MalformedResponseError("a text-only segment cannot follow token ids")
            text = (self.text or "") + seg.text
            return State((), self.logp + seg.logp, self.logq + seg.logq, seg.eos, text)
        return State(self.tokens + seg.tokens, self.logp + seg.logp, self.logq + seg.logq, seg.eos)


EMPTY = State()


def new_seed(rng: np.random.Generator) -> int:
    """A per-call seed drawn from the sampler's generator, so a whole run replays under one seed."""
    return int(rng.integers(2**63))


def state_text(model: TokenModel, s: State) -> str:
    return s.text if s.text is not None else model.decode(s.tokens)


class Meter:
    """Wraps ``model.extend``: enforces the :class:`Budget`, counts tokens and requests, splits a batch
    into ``max_batch`` chunks requested concurrently, derives per-call seeds and validates segments."""

    def __init__(self, model: TokenModel, prompt: Prompt, rng: np.random.Generator, budget: Budget | None) -> None:
        self.model = model
        self.prompt = prompt
        self.rng = rng
        self.budget = budget
        self.max_batch = max(1, int(model.capabilities.max_batch))
        self.tokens_generated = 0
        self.requests = 0
        self.approx = False

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        return [(i, min(i + self.max_batch, n)) for i in range(0, n, self.max_batch)]

    def affordable(self, max_new: Sequence[int]) -> bool:
        """Whether an extend with these per-prefix limits fits the budget (counting every token it could
        generate and every chunked request)."""
        b = self.budget
        if b is None:
            return True
        if b.max_tokens is not None and self.tokens_generated + int(sum(max_new)) > b.max_tokens:
            return False
        return not (b.max_requests is not None and self.requests + len(self._chunks(len(max_new))) > b.max_requests)

    async def extend(
        self, prefixes: Sequence[Sequence[int]], max_new: Sequence[int], temperature: float
    ) -> list[Segment]:
        if any(len(p) for p in prefixes) and not self.model.capabilities.prefix_continuation:
            raise CapabilityError(f"{self.model.provider}/{self.model.model} cannot continue a token prefix")
        chunks = self._chunks(len(prefixes))
        seeds = [new_seed(self.rng) for _ in chunks]
        calls = [
            self.model.extend(self.prompt, list(prefixes[a:b]), [int(m) for m in max_new[a:b]], temperature, seed=s)
            for (a, b), s in zip(chunks, seeds, strict=True)
        ]
        self.requests += len(calls)
        parts = await asyncio.gather(*calls) if len(calls) > 1 else [await calls[0]]
        segs = [s for part in parts for s in part]
        if len(segs) != len(prefixes) or any(len(p) != b - a for p, (a, b) in zip(parts, chunks, strict=True)):
            raise MalformedResponseError(f"extend returned {len(segs)} segments for {len(prefixes)} prefixes")
        for seg, m in zip(segs, max_new, strict=True):
            n = seg.n_tokens
            self.tokens_generated += n
            if n == 0 or n > m:
                raise MalformedResponseError(f"extend returned {n} tokens where 1..{m} were asked for")
            if not math.isfinite(sum(seg.logp) + sum(seg.logq)):
                raise MalformedResponseError("extend returned a non-finite log-probability")
            self.approx = self.approx or seg.approx_logq
        return segs


class Best:
    """The best state seen by a score (for ``best_target`` / ``best_evaluator`` selection)."""

    def __init__(self, score: Callable[[State], float]) -> None:
        self.score = score
        self.state: State | None = None
        self.value = -math.inf
        self._cache: dict[tuple[object, ...], float] = {}

    def offer(self, s: State) -> None:
        key = (s.tokens, s.text, len(s))
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = float(self.score(s))
        if self.state is None or v > self.value:
            self.state, self.value = s, v


def make_result(
    model: TokenModel,
    method: str,
    state: State,
    meter: Meter,
    *,
    target: Target,
    selection: str,
    evaluator_score: float | None = None,
    **fields: object,
) -> GenerationResult:
    """The filled-in record for a returned state (latency and seed are set by ``power_sample``)."""
    text = state_text(model, state)
    lp = state.logp_sum
    reward: float | None = None
    if target.tilted:
        assert target.reward is not None
        reward = float(target.reward(text))
    elif evaluator_score is not None:
        reward = evaluator_score
    result = GenerationResult(
        text=text,
        method=method,
        provider=model.provider,
        model=model.model,
        alpha=target.alpha,
        tokens_generated=meter.tokens_generated,
        tokens_returned=len(state),
        latency_s=0.0,
        seed=None,
        requests=meter.requests,
        selection=selection,
        logp_sum=lp,
        log_target=target.log_density(lp, text),
        reward=reward,
        eos=state.eos,
        approx_logprobs=meter.approx,
        tokens=list(state.tokens),
        **fields,  # type: ignore[arg-type]
    )
    notes = model.capabilities.notes
    if notes:  # the provider's caveats (e.g. proposals drawn at temperature 1) travel with the result
        result.extra.setdefault("provider_notes", notes)
    return result
