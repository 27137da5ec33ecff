"""Gemini (google-genai SDK, ``genai.Client``) as a whole-sequence :class:`~genesis_ps.sampling.TokenModel`.

Requests use ``GenerateContentConfig(response_logprobs=True, logprobs=k, temperature=1, top_p=1,
candidate_count=1, seed=…)`` through ``client.aio.models.generate_content``. As with OpenAI chat,
proposals are drawn at temperature 1 so the returned ``chosen_candidates`` log-probs are the base
model's, and segments report ``logq = logp``; ``temperature_mode="strict"`` raises instead. Gemini may
apply its own default top-k during sampling, which the API does not report: stated in
``capabilities.notes``. No prefix continuation (``prefix_continuation=False``) — ``power_sample`` runs
independence MH. A model that refuses log-probs raises :class:`LogprobsUnsupportedError` once (not
retried), and is remembered.

The legacy ``google-generativeai`` SDK reached end of support on 2025-11-30; this adapter uses only
``google-genai``. Build the client with ``HttpOptions(retry_options=None)`` (the default: no SDK retries).
"""

from __future__ import annotations

import logging
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
)
from genesis_ps.providers.normalize import shape_errors
from genesis_ps.providers.resilience import Resilience
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["GeminiModel", "gemini_contents"]

log = logging.getLogger(__name__)

_NOTES = (
    "Proposals are drawn at temperature 1 (top_p 1) whatever temperature is requested; segments report "
    "logq = logp from the returned chosen-candidate log-probs. Gemini's server-side default top-k, if any, is "
    "not reported by the API (assumed not to change the returned log-probs). The end-of-turn probability is "
    "not returned. No token ids: whole sequences only."
)


def gemini_contents(prompt: Prompt) -> tuple[str | None, list[dict[str, Any]]]:
    """System instruction and ``contents`` for a prompt (roles ``user``/``model``)."""
    if prompt.raw is not None:
        return None, [{"role": "user", "parts": [{"text": prompt.raw}]}]
    system = "\n".join(c for r, c in prompt.messages if r == "system") or None
    contents = [
        {"role": "model" if r == "assistant" else "user", "parts": [{"text": c}]}
        for r, c in prompt.messages
        if r != "system"
    ]
    return system, contents


class GeminiModel:
    """``GeminiModel(genai.Client(api_key=...), "gemini-2.5-flash")`` — see the module docstring."""

    provider = "gemini"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        top_logprobs: int = 0,
        temperature_mode: TemperatureMode = "base",
        resilience: Resilience | None = None,
    ) -> None:
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise ConfigError("top_logprobs", f"must be an integer in [0, 20], got {top_logprobs!r}")
        if temperature_mode not in ("base", "strict"):
            raise ConfigError("temperature_mode", f"must be 'base' or 'strict', got {temperature_mode!r}")
        if not model:
            raise ConfigError("model", "a model name is required")
        self.model = model
        remember_client_key(client)
        self._client = client
        options = getattr(getattr(client, "_api_client", None), "_http_options", None)
        if getattr(options, "retry_options", None) is not None:
            log.warning("the genai client has its own retry_options; genesis_ps retries too (set them to None)")
        self.top_logprobs = top_logprobs
        self.temperature_mode = temperature_mode
        self.resilience = resilience or Resilience(self.provider, model)
        self.usage = Usage()
        self.logprobs_refused = False
        self.capabilities = Capabilities(
            logprobs="exact", prefix_continuation=False, max_batch=self.resilience.max_concurrency,
            top_k=top_logprobs or None, notes=_NOTES,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    def _refuse(self) -> None:
        self.logprobs_refused = True
        self.capabilities = replace(self.capabilities, logprobs="none",
                                    notes="This model refused log-probs; single-shot generation only.")

    def _request(self, prompt: Prompt, *, max_tokens: int, temperature: float, seed: int | None,
                 logprobs: bool) -> tuple[list[dict[str, Any]], Any]:
        """``contents`` and a validated ``GenerateContentConfig``, built outside the error boundary so
        that an invalid configuration is a programmer error, not a malformed response."""
        from google.genai import types

        system, contents = gemini_contents(prompt)
        cfg: dict[str, Any] = dict(temperature=temperature, max_output_tokens=max_tokens, candidate_count=1)
        if temperature > 0:
            cfg["top_p"] = 1.0
        if system:
            cfg["system_instruction"] = system
        if seed is not None:
            cfg["seed"] = seed
        if logprobs:
            cfg["response_logprobs"] = True
            if self.top_logprobs:
                cfg["logprobs"] = self.top_logprobs
        return contents, types.GenerateContentConfig(**cfg)

    async def _create(self, request: tuple[list[dict[str, Any]], Any]) -> tuple[Any, Any]:
        contents, config = request
        response = await self._client.aio.models.generate_content(model=self.model, contents=contents, config=config)
        with shape_errors(self.provider):
            candidates = getattr(response, "candidates", None)
            if not candidates or not isinstance(candidates, list):
                raise MalformedResponseError(f"{self.provider}: the response has no list of candidates",
                                             provider=self.provider)  # fmt: skip
            meta = getattr(response, "usage_metadata", None)
            self.usage.requests += 1
            self.usage.prompt_tokens += int(getattr(meta, "prompt_token_count", 0) or 0)
            return candidates[0], getattr(meta, "candidates_token_count", None)

    @staticmethod
    def _text(candidate: Any) -> str:
        content = getattr(candidate, "content", None)
        parts = getattr(content, "parts", None) or []
        return "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))

    @staticmethod
    def _finish(candidate: Any) -> str | None:
        reason = getattr(candidate, "finish_reason", None)
        name = str(getattr(reason, "value", reason) or "")
        return {"STOP": "stop", "MAX_TOKENS": "length"}.get(name, name.lower() or None)

    def _logprobs(self, candidate: Any, reported: Any) -> list[float]:
        """The chosen tokens' log-probs, checked against the text, the usage count and the top candidates."""
        result = getattr(candidate, "logprobs_result", None)
        chosen = getattr(result, "chosen_candidates", None) if result is not None else None
        if chosen is None:
            raise MalformedResponseError(f"{self.provider}: the response has no logprobs_result",
                                         provider=self.provider)
        chosen = list(chosen)
        values = checked_logprobs(self.provider, [getattr(c, "log_probability", None) for c in chosen])
        tokens = [getattr(c, "token", None) for c in chosen]
        check_coverage(self.provider, tokens, self._text(candidate), n=len(values),
                       reported=reported if isinstance(reported, int) else None,
                       finish=self._finish(candidate))  # fmt: skip
        tops = getattr(result, "top_candidates", None)
        if self.top_logprobs and tops:
            pairs = [[(getattr(a, "token", None), getattr(a, "log_probability", None))
                      for a in (getattr(t, "candidates", None) or [])] for t in tops]  # fmt: skip
            check_top_logprobs(self.provider, pairs, self.top_logprobs, [str(t) for t in tokens], values)
        return values

    async def _one(self, prompt: Prompt, limit: int, seed: int | None) -> Segment:
        if limit == 0:
            return Segment(tokens=(), logp=(), logq=(), eos=False, text="")

        request = self._request(prompt, max_tokens=limit, temperature=1.0, seed=seed, logprobs=True)

        async def attempt() -> Segment:
            cand, reported = await self._create(request)
            with shape_errors(self.provider):
                values = tuple(self._logprobs(cand, reported))
                self.usage.completion_tokens += int(reported) if isinstance(reported, int) else len(values)
                return Segment(tokens=(), logp=values, logq=values, eos=self._finish(cand) == "stop",
                               text=self._text(cand))  # fmt: skip

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
        """One whole-sequence proposal per (empty) prefix, concurrently, drawn at temperature 1."""
        return await whole_sequence_extend(self, prompt, prefixes, max_new_tokens, temperature, seed, self._one)

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """Single-shot generation (log-probs included unless the model refuses them)."""
        check_temperature(temperature, allow_zero=True, upper=2.0)

        async def attempt(logprobs: bool) -> Completion:
            cand, reported = await self._create(requests[logprobs])
            with shape_errors(self.provider):
                values = self._logprobs(cand, reported) if logprobs else None
                text = self._text(cand)
                n = int(reported) if isinstance(reported, int) else len(values) if values is not None else len(
                    text.split())
                self.usage.completion_tokens += n
                return Completion(text=text, tokens_generated=n, logp=tuple(values) if values is not None else None,
                                  finish_reason=self._finish(cand))

        requests = {lp: self._request(prompt, max_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                      logprobs=lp) for lp in (True, False)}
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
