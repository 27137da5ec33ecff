"""OpenAI Chat Completions as a :class:`~genesis_ps.sampling.TokenModel` (whole sequences only).

Design of the proposal temperature. Which log-probs the API returns when sampling at a temperature
other than 1 is not documented, so proposals are always drawn at **temperature 1 with top_p = 1**:
the returned log-probs are then the base model's own, and each segment reports ``logq = logp`` — the
distribution it was really drawn from. The samplers use a segment's ``logq`` as given, so independence
MH stays exact whatever temperature they asked for: its acceptance ratio becomes (p(y')/p(y))^(α−1).
``temperature_mode="strict"`` raises :class:`CapabilityError` instead when asked for temperature ≠ 1.
Both are stated in ``capabilities.notes``.

Chat returns token strings, not ids: segments carry ``text`` and no ``tokens``; ``extend`` accepts only
empty prefixes (``prefix_continuation=False``), so ``power_sample`` runs independence MH whose proposals
are requested concurrently (bounded by the resilience semaphore). A model that rejects ``logprobs``
(e.g. reasoning models) raises :class:`LogprobsUnsupportedError` once; the adapter remembers it, reports
``logprobs="none"`` from then on, and ``generate`` keeps working without log-probs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError, MalformedResponseError
from genesis_ps.providers.hosted.common import (
    TemperatureMode,
    Usage,
    check_coverage,
    check_temperature,
    check_top_logprobs,
    checked_logprobs,
    remember_client_key,
    whole_sequence_extend,
    without_sdk_retries,
)
from genesis_ps.providers.normalize import shape_errors
from genesis_ps.providers.resilience import Resilience
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["OpenAIChatModel", "parse_chat_logprobs"]


_NOTES = (
    "Proposals are drawn at temperature 1 (top_p 1) whatever temperature is requested, so the returned "
    "log-probs are the base model's and segments report logq = logp (the distribution actually sampled); "
    "independence MH is exact with acceptance (p(y')/p(y))^(alpha-1). The probability of the end-of-turn "
    "token is not returned by the API, so sequence log-probs omit it. No token ids: whole sequences only."
)


def parse_chat_logprobs(choice: Any, provider: str, *, top_k: int = 0) -> tuple[list[str], list[float]]:
    """Token strings and log-probs of a chat choice, checked against its text (see
    :mod:`~genesis_ps.providers.hosted.common`); :class:`MalformedResponseError` when missing or bad."""
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if content is None:
        raise MalformedResponseError(f"{provider}: the response has no logprobs.content", provider=provider)
    items = list(content)
    values = checked_logprobs(provider, [getattr(item, "logprob", None) for item in items])
    tokens = [getattr(item, "token", None) for item in items]
    text = getattr(getattr(choice, "message", None), "content", None) or ""
    raw = [getattr(item, "bytes", None) for item in items]
    pieces: list[Any] = tokens
    if items and all(isinstance(b, list) for b in raw):  # exact bytes: tokens may split a UTF-8 character
        try:
            pieces = [b"".join(bytes(b) for b in raw if isinstance(b, list)).decode("utf-8")]
        except (ValueError, TypeError):
            pieces = tokens
    check_coverage(provider, pieces, text, n=len(values), reported=None, finish=None)
    if top_k:
        tops = [[(getattr(a, "token", None), getattr(a, "logprob", None)) for a in (getattr(i, "top_logprobs", None)
                 or [])] for i in items]  # fmt: skip
        check_top_logprobs(provider, tops, top_k, [str(t) for t in tokens], values)
    return [str(t) for t in tokens], values


class OpenAIChatModel:
    """``OpenAIChatModel(AsyncOpenAI(...), "gpt-4.1-mini")`` — see the module docstring."""

    provider = "openai"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        top_logprobs: int = 0,
        temperature_mode: TemperatureMode = "base",
        resilience: Resilience | None = None,
        provider: str | None = None,
    ) -> None:
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise ConfigError("top_logprobs", f"must be an integer in [0, 20], got {top_logprobs!r}")
        if temperature_mode not in ("base", "strict"):
            raise ConfigError("temperature_mode", f"must be 'base' or 'strict', got {temperature_mode!r}")
        if not model:
            raise ConfigError("model", "a model name is required")
        if provider:
            self.provider = provider
        self.model = model
        remember_client_key(client)
        self._client = without_sdk_retries(client)
        self.top_logprobs = top_logprobs
        self.temperature_mode = temperature_mode
        self.resilience = resilience or Resilience(self.provider, model)
        self.usage = Usage()
        self.logprobs_refused = False
        self.capabilities = Capabilities(
            logprobs="exact",
            prefix_continuation=False,
            max_batch=self.resilience.max_concurrency,
            top_k=top_logprobs or None,
            notes=_NOTES,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"

    def _refuse(self) -> None:
        self.logprobs_refused = True
        self.capabilities = replace(
            self.capabilities, logprobs="none", notes="This model rejected logprobs; single-shot generation only."
        )

    async def _create(self, prompt: Prompt, *, max_tokens: int, temperature: float, seed: int | None,
                      logprobs: bool) -> Any:
        kw: dict[str, Any] = dict(
            model=self.model, messages=prompt.as_messages(), max_completion_tokens=max_tokens,
            temperature=temperature, n=1,
        )
        if temperature > 0:
            kw["top_p"] = 1.0
        if seed is not None:
            kw["seed"] = seed
        if logprobs:
            kw["logprobs"] = True
            if self.top_logprobs:
                kw["top_logprobs"] = self.top_logprobs
        return await self._client.chat.completions.create(**kw)

    def _choice(self, response: Any) -> tuple[Any, int | None, str]:
        """The first choice, the provider's completion-token count (None when not reported) and its text."""
        choices = getattr(response, "choices", None)
        if not choices or not isinstance(choices, list):
            raise MalformedResponseError(f"{self.provider}: the response has no list of choices",
                                         provider=self.provider)  # fmt: skip
        usage = getattr(response, "usage", None)
        self.usage.requests += 1
        self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        reported = getattr(usage, "completion_tokens", None)
        text = getattr(getattr(choices[0], "message", None), "content", None) or ""
        if not isinstance(text, str):
            raise MalformedResponseError(f"{self.provider}: the message content is not text", provider=self.provider)
        return choices[0], (int(reported) if isinstance(reported, int) else None), text

    async def _one(self, prompt: Prompt, limit: int, seed: int | None) -> Segment:
        if limit == 0:
            return Segment(tokens=(), logp=(), logq=(), eos=False, text="")

        async def attempt() -> Segment:
            response = await self._create(prompt, max_tokens=limit, temperature=1.0, seed=seed, logprobs=True)
            with shape_errors(self.provider):
                choice, reported, text = self._choice(response)
                _, values = parse_chat_logprobs(choice, self.provider, top_k=self.top_logprobs)
                check_coverage(self.provider, None, text, n=len(values), reported=reported,
                               finish=choice.finish_reason)  # fmt: skip
                self.usage.completion_tokens += reported if reported is not None else len(values)
                lp = tuple(values)
                return Segment(tokens=(), logp=lp, logq=lp, eos=choice.finish_reason == "stop", text=text)

        try:
            return await self.resilience.call(attempt)
        except LogprobsUnsupportedError:
            self._refuse()
            raise

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        """One whole-sequence proposal per (empty) prefix, requested concurrently, drawn at temperature 1."""
        return await whole_sequence_extend(self, prompt, prefixes, max_new_tokens, temperature, seed, self._one)

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """Single-shot generation (log-probs included unless the model rejects them)."""
        check_temperature(temperature, allow_zero=True, upper=2.0)

        async def attempt(logprobs: bool) -> Completion:
            response = await self._create(prompt, max_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                          logprobs=logprobs)  # fmt: skip
            with shape_errors(self.provider):
                choice, reported, text = self._choice(response)
                values = parse_chat_logprobs(choice, self.provider, top_k=self.top_logprobs)[1] if logprobs else None
                if values is not None:
                    check_coverage(self.provider, None, text, n=len(values), reported=reported,
                                   finish=choice.finish_reason)  # fmt: skip
                n = reported if reported is not None else len(values) if values is not None else len(text.split())
                self.usage.completion_tokens += n
                return Completion(text=text, tokens_generated=n, logp=tuple(values) if values is not None else None,
                                  finish_reason=choice.finish_reason)

        if not self.logprobs_refused:
            try:
                return await self.resilience.call(lambda: attempt(True))
            except LogprobsUnsupportedError:
                self._refuse()
        return await self.resilience.call(lambda: attempt(False))

    def decode(self, tokens: Sequence[int]) -> str:
        if tokens:
            raise CapabilityError(f"{self.provider} works in text, not token ids")
        return ""

    def prompt_length(self, prompt: Prompt) -> int | None:
        return None
