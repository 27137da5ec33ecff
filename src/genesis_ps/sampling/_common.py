"""Pieces the samplers share: the chain/particle state, the metered ``extend`` call (budget, per-call
seeds, batching into ``max_batch`` chunks requested concurrently, validation), selection bookkeeping and
the result record."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genesis_ps.errors import CapabilityError, ConfigError, MalformedResponseError
from genesis_ps.sampling.params import Budget
from genesis_ps.sampling.protocol import LookaheadModel, Prompt, Segment, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Target

__all__ = [
    "EMPTY", "Best", "Consensus", "Meter", "State", "check_one_alpha", "make_result", "mixing_note", "new_seed",
    "normalise", "state_text",
]


def normalise(logw: Sequence[float] | np.ndarray) -> np.ndarray:
    """Probabilities ∝ exp(``logw``), without overflow (the largest weight is subtracted first): how MH picks
    among tries and block draws, SMC weighs its particles and TPS picks a rollout."""
    a = np.asarray(logw, dtype=float)
    w: np.ndarray = np.exp(a - np.max(a))
    out: np.ndarray = w / w.sum()
    return out


@dataclass(frozen=True, slots=True)
class State:
    """A generated sequence with the per-token log p / log q it was sampled with (never recomputed), and
    the base model's next-token entropy at each position when the model reports it (else empty)."""

    tokens: tuple[int, ...] = ()
    logp: tuple[float, ...] = ()
    logq: tuple[float, ...] = ()
    eos: bool = False
    text: str | None = None
    """Set only for providers that return text instead of token ids."""
    ent: tuple[float, ...] = ()
    """Empty, or aligned with ``logp`` (entropy cuts need it aligned)."""

    def __len__(self) -> int:
        return len(self.logp)

    @property
    def logp_sum(self) -> float:
        return math.fsum(self.logp)

    @property
    def logq_sum(self) -> float:
        return math.fsum(self.logq)

    @property
    def has_entropy(self) -> bool:
        return len(self.ent) == len(self.logp)

    def cut(self, t: int) -> State:
        """The first ``t`` tokens (a prefix never ends on EOS)."""
        if self.text is not None and t:
            raise CapabilityError("a text-only state cannot be cut inside; the model gives no token ids")
        return State(self.tokens[:t], self.logp[:t], self.logq[:t], False, None, self.ent[:t])

    def splice(self, t: int, seg: Segment) -> State:
        """``self.cut(t).grow(seg)``, fast for token states (the MH inner loop)."""
        if self.text is None and seg.text is None:
            ent = self.ent[:t] + seg.entropy if (len(self.ent) >= t and len(seg.entropy) == seg.n_tokens) else ()
            return State(self.tokens[:t] + seg.tokens, self.logp[:t] + seg.logp, self.logq[:t] + seg.logq, seg.eos,
                         None, ent)  # fmt: skip
        return self.cut(t).grow(seg)

    def grow(self, seg: Segment) -> State:
        """This state followed by a sampled segment."""
        ent = self.ent + seg.entropy if (self.has_entropy and len(seg.entropy) == seg.n_tokens) else ()
        if seg.text is not None and not seg.tokens:
            if self.tokens:
                raise MalformedResponseError("a text-only segment cannot follow token ids")
            text = (self.text or "") + seg.text
            return State((), self.logp + seg.logp, self.logq + seg.logq, seg.eos, text, ent)
        return State(self.tokens + seg.tokens, self.logp + seg.logp, self.logq + seg.logq, seg.eos, None, ent)


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
        self.approx_entropy = False

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
        self,
        prefixes: Sequence[Sequence[int]],
        max_new: Sequence[int],
        temperature: float,
        *,
        stop_entropy: float | None = None,
        top_n: int = 0,
        exclude_first: Sequence[int | None] | None = None,
    ) -> list[Segment]:
        """``model.extend`` (or ``extend_until`` with ``stop_entropy``), chunked, seeded and validated;
        ``exclude_first`` (per prefix a token id or None) is passed on where any entry is set."""
        if any(len(p) for p in prefixes) and not self.model.capabilities.prefix_continuation:
            raise CapabilityError(f"{self.model.provider}/{self.model.model} cannot continue a token prefix")
        chunks = self._chunks(len(prefixes))
        seeds = [new_seed(self.rng) for _ in chunks]
        if stop_entropy is not None:
            if not self.model.capabilities.lookahead or not isinstance(self.model, LookaheadModel):
                raise CapabilityError(f"{self.model.provider}/{self.model.model} offers no extend_until")
            la = self.model
            calls = [
                la.extend_until(self.prompt, list(prefixes[a:b]), [int(m) for m in max_new[a:b]], temperature,
                                stop_entropy=stop_entropy, top_n=top_n, seed=s)
                for (a, b), s in zip(chunks, seeds, strict=True)
            ]  # fmt: skip
        else:
            excluding = exclude_first is not None and any(e is not None for e in exclude_first)
            if excluding and not self.model.capabilities.exclude_first:
                raise CapabilityError(f"{self.model.provider}/{self.model.model} cannot exclude a first token")

            def kw(a: int, b: int) -> dict[str, Any]:  # only models that take the keyword ever see it
                return {"exclude_first": list(exclude_first[a:b])} if excluding and exclude_first else {}

            calls = [
                self.model.extend(self.prompt, list(prefixes[a:b]), [int(m) for m in max_new[a:b]], temperature,
                                  seed=s, **kw(a, b))
                for (a, b), s in zip(chunks, seeds, strict=True)
            ]  # fmt: skip
        self.requests += len(calls)
        parts = await asyncio.gather(*calls) if len(calls) > 1 else [await calls[0]]
        segs = [s for part in parts for s in part]
        if len(segs) != len(prefixes) or any(len(p) != b - a for p, (a, b) in zip(parts, chunks, strict=True)):
            raise MalformedResponseError(f"extend returned {len(segs)} segments for {len(prefixes)} prefixes")
        low = 0 if stop_entropy is not None else 1
        for seg, m in zip(segs, max_new, strict=True):
            n = seg.n_tokens
            self.tokens_generated += n
            if n < low or n > m:
                raise MalformedResponseError(f"extend returned {n} tokens where {low}..{m} were asked for")
            if not math.isfinite(sum(seg.logp) + sum(seg.logq)):
                raise MalformedResponseError("extend returned a non-finite log-probability")
            self.approx = self.approx or seg.approx_logq
            self.approx_entropy = self.approx_entropy or seg.approx_entropy
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


class Consensus:
    """Votes for ``selection="consensus"``: each offered state (a chain's state after a step, or a final
    particle) votes for its extracted answer with a weight (1, or the particle's normalised weight). The
    pick is the answer of largest total weight — the majority when weights are equal — and the last state
    offered with it. A selection over what was sampled; it never enters the chain or the weights."""

    def __init__(self, extract: Callable[[str], str | None]) -> None:
        self.extract = extract
        self.totals: dict[str, float] = {}
        self.latest: dict[str, State] = {}
        self.seen = 0

    def offer(self, text: str, s: State, weight: float = 1.0) -> None:
        self.seen += 1
        answer = self.extract(text)
        if answer is None:
            return
        key = str(answer)
        self.totals[key] = self.totals.get(key, 0.0) + float(weight)
        self.latest[key] = s

    def pick(self) -> tuple[str | None, State | None]:
        """(majority answer, a state with it), or (None, None) when no state had an answer."""
        if not self.totals:
            return None, None
        answer = max(self.totals, key=lambda a: (self.totals[a], a))
        return answer, self.latest[answer]


def check_one_alpha(params: Any, target: Target) -> None:
    """The α of the parameters and of the target are one value: refuse two."""
    if float(params.alpha) != float(target.alpha):
        raise ConfigError(
            "alpha", f"the sampler's alpha ({params.alpha!r}) and the target's alpha ({target.alpha!r}) differ; "
            "they are one value",
        )


def mixing_note(
    first_token_moves: int, final: State, tau: float, alpha: float, first_token_proposals: int | None = None
) -> str | None:
    """A plain warning when a chain never accepted a move that changed its first token."""
    if first_token_moves or len(final) == 0:
        return None
    tried = "" if first_token_proposals is None else f"; {first_token_proposals} proposal(s) cut there"
    return (
        f"no accepted MH move changed the first token: it is the initial draw's (proposals at τ = {tau:.3g}, "
        f"α = {alpha:g}{tried}); where the first token matters this run cannot have mixed — raise "
        "proposal_temperature or n_mcmc"
    )


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
