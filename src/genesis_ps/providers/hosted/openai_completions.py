"""OpenAI-compatible completions servers (vLLM, SGLang, llama.cpp / llama-cpp-python server) as a
:class:`~genesis_ps.sampling.TokenModel` that continues token prefixes (block-wise MH and SMC run).

Each ``extend`` prefix becomes one ``client.completions.create`` request (concurrent, bounded by the
resilience semaphore) with ``logprobs=k``, ``echo=False``, ``max_tokens``, ``temperature`` τ,
``top_p=1`` and ``seed``.

Tokens — two modes (``token_mode``):

* ``ids`` (needs ``tokenizer``, the served model's, with ``encode``/``decode``): the prompt goes as token
  ids (prompt ids + prefix), and the server is asked for ``return_tokens_as_token_ids`` (vLLM), whose
  ``token_id:N`` strings are parsed into ids. Exact token identity; EOS included when the server returns it.
* ``text`` (no tokenizer): the server's token *strings* are interned into adapter-local integer ids, so
  samplers can still pass prefixes back; a prefix is sent as prompt text + the prefix's strings. The
  server re-tokenises that text, which may split it differently from how it was sampled — an
  approximation stated in ``capabilities.notes``.

Log-probs: ``logp`` is the returned sampled-token log-prob, assumed *raw* (temperature 1, vLLM's default
``logprobs_mode=raw_logprobs``). ``logq`` at τ ≠ 1 is approximated from the top-k
(:func:`~genesis_ps.providers.topk.approx_logq`), flagged with ``Segment.approx_logq``; at τ = 1 it is
exact (``logq = logp``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from genesis_ps.errors import ConfigError, MalformedResponseError
from genesis_ps.providers.hosted.common import (
    Usage,
    check_coverage,
    check_temperature,
    check_top_logprobs,
    checked_logprobs,
    derive_seed,
    per_prefix_limits,
    remember_client_key,
    without_sdk_retries,
)
from genesis_ps.providers.normalize import shape_errors
from genesis_ps.providers.resilience import Resilience
from genesis_ps.providers.topk import APPROX_MODES, ApproxMode, approx_logq, topk_entropy
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["EOS_STRINGS", "OpenAICompletionsModel", "TokenMode", "Tokenizer", "render_plain"]

TokenMode = Literal["auto", "ids", "text"]
_ID_PREFIX = "token_id:"
_Answer = tuple[list[int], list[float], list[dict[str, float]], list[str], str | None]
EOS_STRINGS: tuple[str, ...] = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<eos>")
"""Text-mode token strings treated as end-of-sequence markers (kept in segments, dropped by ``decode``)."""


class Tokenizer(Protocol):
    """What ids mode needs from the served model's tokenizer (a transformers tokenizer fits)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool = ...) -> str: ...


def render_plain(prompt: Prompt) -> str:
    """Default prompt text without a chat template: a raw prompt verbatim, messages as ``role: text``."""
    if prompt.raw is not None:
        return prompt.raw
    lines = [f"{role}: {content}" for role, content in prompt.messages]
    return "\n\n".join([*lines, "assistant:"])


class OpenAICompletionsModel:
    """``OpenAICompletionsModel(AsyncOpenAI(base_url=...), "served-model", tokenizer=...)``."""

    provider = "openai-compatible"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        tokenizer: Tokenizer | None = None,
        token_mode: TokenMode = "auto",
        top_logprobs: int = 20,
        approx: ApproxMode = "renorm",
        render: Callable[[Prompt], str] | None = None,
        eos_token_id: int | None = None,
        context_length: int | None = None,
        resilience: Resilience | None = None,
        extra_body: dict[str, Any] | None = None,
        eos_strings: Sequence[str] = EOS_STRINGS,
    ) -> None:
        if not model:
            raise ConfigError("model", "a model name is required (the name the server serves)")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 1 <= top_logprobs <= 20:
            raise ConfigError("top_logprobs", f"must be an integer in [1, 20], got {top_logprobs!r}")
        if approx not in APPROX_MODES:
            raise ConfigError("approx", f"unknown mode {approx!r}; choose one of {', '.join(APPROX_MODES)}")
        if token_mode not in ("auto", "ids", "text"):
            raise ConfigError("token_mode", f"must be auto, ids or text, got {token_mode!r}")
        if token_mode == "ids" and tokenizer is None:
            raise ConfigError("tokenizer", "token_mode='ids' needs the served model's tokenizer")
        self.model = model
        remember_client_key(client)
        self._client = without_sdk_retries(client)
        self.tokenizer = tokenizer
        self.token_mode: Literal["ids", "text"] = "ids" if (token_mode == "ids" or (
            token_mode == "auto" and tokenizer is not None)) else "text"
        self.top_logprobs = top_logprobs
        self.approx: ApproxMode = approx
        self._render = render or self._default_render
        self._extra_body = dict(extra_body or {})
        self.resilience = resilience or Resilience(self.provider, model)
        self.usage = Usage()
        self._strings: list[str] = []
        self._ids: dict[str, int] = {}
        self._eos_strings = frozenset(eos_strings)
        eos = eos_token_id if eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
        self.eos_token_id = eos if self.token_mode == "ids" else None
        mode_note = ("token ids (return_tokens_as_token_ids)" if self.token_mode == "ids" else
                     "text tokens interned to local ids; a continued prefix is re-tokenised by the server, "
                     "which may split it differently from how it was sampled")
        self.capabilities = Capabilities(
            logprobs="top_k",
            prefix_continuation=True,
            max_batch=self.resilience.max_concurrency,
            eos_token_id=self.eos_token_id,
            top_k=top_logprobs,
            context_length=context_length,
            notes=(f"logp = the server's sampled-token log-prob, assumed raw (temperature 1; vLLM's default "
                   f"logprobs_mode); logq at temperature != 1 approximated from the top-{top_logprobs} "
                   f"({approx}); exact at temperature 1. Tokens: {mode_note}. p(EOS) is included only when "
                   f"the server returns the EOS token. Next-token entropies (for entropy cuts) are estimated "
                   f"from the same top-{top_logprobs} (a lower bound; flagged approx_entropy)."),
            entropy="top_k",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, token_mode={self.token_mode!r})"

    def _default_render(self, prompt: Prompt) -> str:
        tmpl = getattr(self.tokenizer, "apply_chat_template", None)
        if prompt.raw is None and tmpl is not None and getattr(self.tokenizer, "chat_template", None):
            return str(tmpl(prompt.as_messages(), tokenize=False, add_generation_prompt=True))
        return render_plain(prompt)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        assert self.tokenizer is not None
        return list(self.tokenizer.encode(self._render(prompt), add_special_tokens=False))

    # -- token bookkeeping ------------------------------------------------------------------------
    def _intern(self, s: str) -> int:
        if s not in self._ids:
            self._ids[s] = len(self._strings)
            self._strings.append(s)
        return self._ids[s]

    def _token_id(self, s: str) -> int:
        if self.token_mode == "text":
            return self._intern(s)
        if s.startswith(_ID_PREFIX):
            try:
                return int(s[len(_ID_PREFIX):])
            except ValueError:
                pass
        raise MalformedResponseError(
            f"{self.provider}: token {s!r} is not 'token_id:N'; the server ignored return_tokens_as_token_ids "
            "(use token_mode='text' for this server)", provider=self.provider, retryable=False)

    def _request_prompt(self, prompt: Prompt, prefix: Sequence[int]) -> list[int] | str:
        if self.token_mode == "ids":
            return self._prompt_ids(prompt) + [int(t) for t in prefix]
        try:
            return self._render(prompt) + "".join(self._strings[t] for t in prefix)
        except IndexError:
            raise ConfigError("prefixes", "a prefix holds token ids this adapter never produced") from None

    async def _complete(self, prompt: Prompt, prefix: Sequence[int], limit: int, tau: float,
                        seed: int | None) -> _Answer:
        """One request: (token ids, log-probs, top-k dicts, token strings, finish reason)."""
        kw: dict[str, Any] = dict(model=self.model, prompt=self._request_prompt(prompt, prefix), max_tokens=limit,
                                  temperature=tau, logprobs=self.top_logprobs, echo=False, n=1)
        if tau > 0:
            kw["top_p"] = 1.0
        if seed is not None:
            kw["seed"] = seed
        body = dict(self._extra_body)
        if self.token_mode == "ids":
            body.setdefault("return_tokens_as_token_ids", True)
        if body:
            kw["extra_body"] = body
        response = await self._client.completions.create(**kw)
        with shape_errors(self.provider):
            return self._parse(response)

    def _parse(self, response: Any) -> _Answer:
        """Read and check one response (see :mod:`~genesis_ps.providers.hosted.common`)."""
        choices = getattr(response, "choices", None)
        if not choices or not isinstance(choices, list):
            raise MalformedResponseError(f"{self.provider}: the response has no list of choices",
                                         provider=self.provider)  # fmt: skip
        choice = choices[0]
        lp = getattr(choice, "logprobs", None)
        tokens = getattr(lp, "tokens", None)
        values = getattr(lp, "token_logprobs", None)
        tops = getattr(lp, "top_logprobs", None)
        if tokens is None or values is None or tops is None or not (len(tokens) == len(values) == len(tops)):
            raise MalformedResponseError(f"{self.provider}: the response lacks aligned logprobs",
                                         provider=self.provider)
        clean = checked_logprobs(self.provider, list(values))
        if not clean:  # at least the EOS token was generated, and a completions server returns what it generated
            raise MalformedResponseError(f"{self.provider}: refused a response with no tokens", provider=self.provider)
        strings = [t if isinstance(t, str) else None for t in tokens]
        text = getattr(choice, "text", None)
        text = text if isinstance(text, str) else ""
        usage = getattr(response, "usage", None)
        reported = getattr(usage, "completion_tokens", None)
        finish = choice.finish_reason
        if any(t is None for t in strings):
            raise MalformedResponseError(f"{self.provider}: a returned token is not a string", provider=self.provider)
        pieces = None if self.token_mode == "ids" else [t for t in strings if t not in self._eos_strings]
        check_coverage(self.provider, pieces, self._strip_eos(text), n=len(clean),
                       reported=reported if isinstance(reported, int) else None, finish=finish)  # fmt: skip
        top_dicts = check_top_logprobs(self.provider, [t or {} for t in tops], self.top_logprobs,
                                       [str(t) for t in strings], clean)  # fmt: skip
        self.usage.requests += 1
        self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.usage.completion_tokens += len(tokens)
        ids = [self._token_id(str(t)) for t in strings]
        return ids, clean, top_dicts, [str(t) for t in strings], finish

    def _strip_eos(self, text: str) -> str:
        for e in self._eos_strings:
            text = text.replace(e, "")
        return text

    async def _one(self, prompt: Prompt, prefix: Sequence[int], limit: int, tau: float, seed: int | None) -> Segment:
        if limit == 0:
            return Segment(tokens=(), logp=(), logq=(), eos=False, text="")

        async def attempt() -> Segment:
            ids, lps, tops, strings, finish = await self._complete(prompt, prefix, limit, tau, seed)
            approximate = tau != 1.0
            logq = tuple(
                approx_logq(lp, top.values(), tau, sampled_in_top=s in top, mode=self.approx) if approximate else lp
                for lp, top, s in zip(lps, tops, strings, strict=True)
            )
            eos = finish == "stop"
            ent = tuple(topk_entropy(top.values()) for top in tops)
            return Segment(tokens=tuple(ids), logp=tuple(lps), logq=logq, eos=eos, text=self.decode(ids),
                           approx_logq=approximate, entropy=ent, approx_entropy=True)

        return await self.resilience.call(attempt)

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        """Continue each prefix at ``temperature`` (one concurrent request per prefix)."""
        tau = check_temperature(temperature, allow_zero=False)
        limits = per_prefix_limits(max_new_tokens, len(prefixes))
        jobs = [self._one(prompt, p, m, tau, derive_seed(seed, i))
                for i, (p, m) in enumerate(zip(prefixes, limits, strict=True))]
        return list(await asyncio.gather(*jobs))

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """Single-shot generation; log-probs are the server's (at temperature 1 only is that log p)."""
        t = check_temperature(temperature, allow_zero=True)

        async def attempt() -> Completion:
            ids, lps, _, _, finish = await self._complete(prompt, (), max_new_tokens, t, seed)
            return Completion(text=self.decode(ids), tokens_generated=len(ids), logp=tuple(lps), finish_reason=finish)

        return await self.resilience.call(attempt)

    def decode(self, tokens: Sequence[int]) -> str:
        if self.token_mode == "ids":
            assert self.tokenizer is not None
            ids = [int(t) for t in tokens if t != self.eos_token_id]
            return str(self.tokenizer.decode(ids, skip_special_tokens=True))
        return "".join(
            s for s in (self._strings[t] for t in tokens if 0 <= t < len(self._strings)) if s not in self._eos_strings
        )

    def prompt_length(self, prompt: Prompt) -> int | None:
        return len(self._prompt_ids(prompt)) if self.token_mode == "ids" else None
