"""The one interface every power-sampling algorithm talks to.

A :class:`TokenModel` samples continuations of token prefixes and reports, for every sampled token,
``logp`` — the base model's log-probability at temperature 1, the target's ingredient — and ``logq`` —
the log-probability under the distribution actually sampled from (the proposal). What a model can do is
data (:class:`Capabilities`); callers check it rather than the model's type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Capabilities",
    "Completion",
    "LogprobKind",
    "LookaheadModel",
    "Prompt",
    "Segment",
    "TokenModel",
    "as_prompt",
]

LogprobKind = Literal["exact", "top_k", "none"]


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a model adapter really offers."""

    logprobs: LogprobKind
    """``exact``: log p and log q of every sampled token are exact. ``top_k``: log p of sampled tokens is
    the provider's, but the proposal normaliser is approximated from top-k alternatives. ``none``: no
    log-probabilities at all (power sampling impossible; single-shot only)."""
    prefix_continuation: bool
    """Whether ``extend`` accepts non-empty token prefixes (needed for block-wise MH and SMC)."""
    max_batch: int = 1
    """How many prefixes one ``extend`` call advances together (1 = one at a time)."""
    eos_token_id: int | None = None
    """The end-of-sequence token id, when the model works in token ids."""
    top_k: int | None = None
    """How many alternatives per position the provider returns, for ``top_k`` log-probs."""
    context_length: int | None = None
    """Maximum prompt + generated tokens, when known."""
    notes: str = ""
    """Plain-language caveats (assumptions about undocumented provider behaviour, and so on)."""
    entropy: LogprobKind = "none"
    """``exact``: every :class:`Segment` carries the base model's next-token entropy at each sampled
    position, from the same forward pass. ``top_k``: estimated from the top-k log-probs (approximate,
    flagged in ``Segment.approx_entropy``). ``none``: no entropies (entropy cuts refused)."""
    lookahead: bool = False
    """Whether the model implements :class:`LookaheadModel` (``extend_until``), which token-level power
    sampling (``tps``) needs."""
    exclude_first: bool = False
    """Whether ``extend`` takes ``exclude_first``: per row ``None`` or a token id that the row's *first*
    sampled token must not be (drawn from the proposal renormalised without it, the reported ``logq``
    still the unrestricted proposal's). MH's ``change_at_cut`` and ``moves`` other than plain need it."""
    call_tokens: int = 1
    """About how many tokens one ``extend`` call's fixed cost is worth: samplers that extend a row piece by
    piece (MH's early rejection) ask for at least this many tokens per call."""


@dataclass(frozen=True)
class Prompt:
    """A prompt: chat messages (role, content), or raw text that is used exactly, with no template."""

    messages: tuple[tuple[str, str], ...] = ()
    raw: str | None = None

    @classmethod
    def user(cls, text: str, *, system: str | None = None) -> Prompt:
        msgs = ((("system", system),) if system else ()) + (("user", text),)
        return cls(messages=msgs)

    @classmethod
    def text(cls, raw: str) -> Prompt:
        return cls(raw=raw)

    def as_messages(self) -> list[dict[str, str]]:
        """Messages for chat APIs; a raw prompt becomes one user message."""
        if self.raw is not None:
            return [{"role": "user", "content": self.raw}]
        return [{"role": r, "content": c} for r, c in self.messages]

    def flat_text(self) -> str:
        """All the prompt's text, for length checks and logging."""
        if self.raw is not None:
            return self.raw
        return "\n".join(c for _, c in self.messages)


def as_prompt(prompt: str | Prompt | Sequence[Mapping[str, str]]) -> Prompt:
    """Accept a plain string (one user message), a :class:`Prompt`, or a list of chat messages."""
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str):
        return Prompt.user(prompt)
    return Prompt(messages=tuple((str(m["role"]), str(m["content"])) for m in prompt))


@dataclass(frozen=True)
class Segment:
    """One sampled continuation.

    ``tokens``, ``logp`` and ``logq`` align: one entry per sampled token, the EOS token included when
    the segment ended on it (``eos``), since p(EOS | prefix) is part of the sequence's probability.
    Providers that return text rather than ids leave ``tokens`` empty and set ``text``.
    """

    tokens: tuple[int, ...]
    logp: tuple[float, ...]
    logq: tuple[float, ...]
    eos: bool
    text: str | None = None
    approx_logq: bool = False
    """True when ``logq`` is approximated (top-k normaliser), never silently."""
    entropy: tuple[float, ...] = ()
    """Empty, or per sampled token the entropy (nats) of the base model's next-token distribution at that
    position — the distribution the token's ``logp`` comes from."""
    approx_entropy: bool = False
    """True when ``entropy`` was estimated from top-k log-probs."""
    next_top: tuple[tuple[int, float], ...] = ()
    """Only from :meth:`LookaheadModel.extend_until` when it stopped at a decision point: the likeliest
    next tokens there, with their base log p, likeliest first."""
    next_entropy: float | None = None
    """The base model's entropy at that decision point (None when the segment did not stop at one)."""

    def __post_init__(self) -> None:
        if len(self.logp) != len(self.logq):
            raise ValueError("Segment.logp and Segment.logq must have one entry per sampled token")
        if self.tokens and len(self.tokens) != len(self.logp):
            raise ValueError("Segment.tokens must align with Segment.logp")
        if self.entropy and len(self.entropy) != len(self.logp):
            raise ValueError("Segment.entropy must be empty or align with Segment.logp")

    @property
    def n_tokens(self) -> int:
        return len(self.logp)


@dataclass(frozen=True)
class Completion:
    """A single-shot generation from any provider, log-probs or not."""

    text: str
    tokens_generated: int
    logp: tuple[float, ...] | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class TokenModel(Protocol):
    """The async protocol the samplers use. See ARCHITECTURE.md."""

    provider: str
    model: str
    capabilities: Capabilities

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        """Sample one continuation per prefix (at most ``max_new_tokens`` each, stopping at EOS) at
        ``temperature``; return one :class:`Segment` per prefix, in order."""
        ...

    async def generate(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> Completion:
        """Plain single-shot generation (works on every provider, log-probs or not)."""
        ...

    def decode(self, tokens: Sequence[int]) -> str:
        """Token ids to text (the EOS token, if present, is dropped)."""
        ...

    def prompt_length(self, prompt: Prompt) -> int | None:
        """The prompt's length in tokens, when the model can tell (for context-length checks)."""
        ...


@runtime_checkable
class LookaheadModel(Protocol):
    """What token-level power sampling needs beyond :class:`TokenModel` (``capabilities.lookahead``)."""

    async def extend_until(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        stop_entropy: float,
        top_n: int,
        seed: int | None = None,
    ) -> list[Segment]:
        """Like :meth:`TokenModel.extend`, but each row stops *before* sampling at a position whose base
        next-token entropy is ``>= stop_entropy`` (possibly before its first token: then the segment has no
        tokens) and reports that position's ``top_n`` likeliest tokens (``Segment.next_top``) and entropy
        (``Segment.next_entropy``). A row that ends on EOS or at its limit first reports neither."""
        ...
