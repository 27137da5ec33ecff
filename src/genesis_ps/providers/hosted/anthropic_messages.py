"""Anthropic Messages API (anthropic SDK): single-shot generation only.

The API returns no token log-probabilities, so ``capabilities.logprobs == "none"`` and ``extend``
raises :class:`LogprobsUnsupportedError`; :func:`genesis_ps.generate` then takes the single-shot
fallback and records ``fallback="no_logprobs"``. Nothing is estimated to fill the gap.

A prompt whose last message is the assistant's is sent as an assistant *prefill* (the model continues
it); ``Completion.text`` is the continuation only. Models that reject prefill answer HTTP 400, raised as
:class:`~genesis_ps.errors.BadRequestError`. The API takes no seed (ignored, stated in the notes).
The anthropic 2.x SDK has no ``temperature`` argument: temperature 1 (the API's default) sends none;
any other value in [0, 1] goes in ``extra_body`` and the model accepts or rejects it (HTTP 400 →
:class:`~genesis_ps.errors.BadRequestError`); values outside [0, 1] raise :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError, MalformedResponseError
from genesis_ps.providers.hosted.common import Usage, check_temperature, remember_client_key, without_sdk_retries
from genesis_ps.providers.normalize import shape_errors
from genesis_ps.providers.resilience import Resilience
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["AnthropicModel", "anthropic_messages"]

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def anthropic_messages(prompt: Prompt) -> tuple[str | None, list[dict[str, str]]]:
    """System text and ``messages`` for the Messages API."""
    if prompt.raw is not None:
        return None, [{"role": "user", "content": prompt.raw}]
    system = "\n".join(c for r, c in prompt.messages if r == "system") or None
    return system, [{"role": r, "content": c} for r, c in prompt.messages if r != "system"]


class AnthropicModel:
    """``AnthropicModel(AsyncAnthropic(...), "claude-haiku-4-5")`` — single-shot only."""

    provider = "anthropic"

    def __init__(self, client: Any, model: str, *, resilience: Resilience | None = None) -> None:
        if not model:
            raise ConfigError("model", "a model name is required")
        self.model = model
        remember_client_key(client)
        self._client = without_sdk_retries(client)
        self.resilience = resilience or Resilience(self.provider, model)
        self.usage = Usage()
        self.capabilities = Capabilities(
            logprobs="none",
            prefix_continuation=False,
            max_batch=1,
            notes="The Messages API returns no log-probabilities: single-shot only, power sampling falls back. "
            "No seed parameter (seeds are ignored). Temperature 1 is the API default; other values are sent in "
            "extra_body (the SDK has no temperature argument). A final assistant message is sent as a prefill.",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        raise LogprobsUnsupportedError(f"{self.provider}/{self.model} returns no log-probabilities")

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """One message; ``text`` is what the model wrote (after the prefill, if any)."""
        t = check_temperature(temperature, allow_zero=True, upper=1.0)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be an integer >= 1, got {max_new_tokens!r}")
        system, messages = anthropic_messages(prompt)
        if not messages:
            raise ConfigError("prompt", "needs at least one user message")

        async def attempt() -> Completion:
            kw: dict[str, Any] = dict(model=self.model, max_tokens=max_new_tokens, messages=messages)
            if t != 1.0:
                kw["extra_body"] = {"temperature": t}
            if system:
                kw["system"] = system
            msg = await self._client.messages.create(**kw)
            with shape_errors(self.provider):
                return self._completion(msg)

        return await self.resilience.call(attempt)

    def _completion(self, msg: Any) -> Completion:
        """Read one message (text blocks, usage, stop reason)."""
        blocks = getattr(msg, "content", None)
        usage = getattr(msg, "usage", None)
        if blocks is None or usage is None:
            raise MalformedResponseError(f"{self.provider}: the response lacks content or usage",
                                         provider=self.provider)
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", "") == "text")
        self.usage.requests += 1
        self.usage.prompt_tokens += int(getattr(usage, "input_tokens", 0) or 0)
        n = int(getattr(usage, "output_tokens", 0) or 0)
        self.usage.completion_tokens += n
        reason = str(getattr(msg, "stop_reason", None) or "") or None
        return Completion(text=text, tokens_generated=n, logp=None, finish_reason=_FINISH.get(reason or "", reason),
                          usage={"input_tokens": int(getattr(usage, "input_tokens", 0) or 0), "output_tokens": n})

    def decode(self, tokens: Sequence[int]) -> str:
        if tokens:
            raise CapabilityError(f"{self.provider} works in text, not token ids")
        return ""

    def prompt_length(self, prompt: Prompt) -> int | None:
        return None
