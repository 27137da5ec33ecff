"""What the HTTP adapters share: usage counts, argument checks, seeds, the whole-sequence ``extend``
of the chat-style adapters, turning off an SDK client's own retries, and the checks every response with
log-probs passes before anything is built from it. Imports no SDK.

The checks (each failure a retryable :class:`~genesis_ps.errors.MalformedResponseError`, so the response
is retried, counted in ``genesis_ps_provider_errors_total`` and never becomes a power sample):

- every log-prob is a number, finite, and <= 0 (``LOGPROB_TOLERANCE`` above 0 is rounding, clipped to 0);
- the returned tokens spell the returned text exactly (a response whose log-probs cover a third of its text
  would make short sums look probable);
- their count matches ``usage.completion_tokens`` where the provider reports it (one more is allowed when
  the text ended on a stop token the log-probs leave out);
- top-k lists: at most k (+1 for the sampled token) entries of (token string, valid log-prob), their
  probabilities summing to at most 1, and the sampled token's entry equal to its log-prob.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError, MalformedResponseError
from genesis_ps.providers.keys import register_secret
from genesis_ps.sampling.protocol import Prompt, Segment

__all__ = [
    "LOGPROB_TOLERANCE",
    "TemperatureMode",
    "Usage",
    "check_base_url",
    "check_coverage",
    "check_temperature",
    "check_top_logprobs",
    "checked_logprobs",
    "derive_seed",
    "per_prefix_limits",
    "remember_client_key",
    "whole_sequence_extend",
    "without_sdk_retries",
]

log = logging.getLogger(__name__)

TemperatureMode = Literal["base", "strict"]
"""``base``: proposals drawn at temperature 1 whatever is asked (the sampler corrects for it); ``strict``:
refuse any other temperature."""


@dataclass
class Usage:
    """What an adapter spent, counted from the provider's answers (not estimated)."""

    requests: int = 0
    """Successful provider responses parsed."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    """Output tokens as the provider reported them (or as counted from log-probs when it reports none)."""


def per_prefix_limits(max_new_tokens: int | Sequence[int], n: int) -> list[int]:
    """One token limit per prefix; raise :class:`ConfigError` naming ``max_new_tokens`` when invalid."""
    limits = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != n:
        raise ConfigError("max_new_tokens", f"got {len(limits)} limits for {n} prefixes")
    for m in limits:
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ConfigError("max_new_tokens", f"must be integers >= 0, got {m!r}")
    return [int(m) for m in limits]


def check_temperature(temperature: float, *, allow_zero: bool, upper: float | None = None) -> float:
    """Validate a sampling temperature before any request is made."""
    ok = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and math.isfinite(temperature)
    low_ok = ok and (temperature >= 0 if allow_zero else temperature > 0)
    if not low_ok or (upper is not None and temperature > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ConfigError("temperature", f"must be {'>= 0' if allow_zero else '> 0'}{bound}, got {temperature!r}")
    return float(temperature)


def check_base_url(url: str, name: str = "base_url") -> str:
    """An http(s) URL with a host (``http://127.0.0.1:8000/v1``); :class:`ConfigError` naming ``name``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(name, f"must be an http:// or https:// URL with a host, such as "
                                f"http://127.0.0.1:8000/v1; got {url!r}")  # fmt: skip
    return url


def derive_seed(seed: int | None, index: int) -> int | None:
    """A distinct, reproducible seed for the ``index``-th of several concurrent requests."""
    return None if seed is None else (seed + 1_000_003 * index) % (2**31 - 1)


async def whole_sequence_extend(
    model: Any,
    prompt: Prompt,
    prefixes: Sequence[Sequence[int]],
    max_new_tokens: int | Sequence[int],
    temperature: float,
    seed: int | None,
    one: Callable[[Prompt, int, int | None], Awaitable[Segment]],
) -> list[Segment]:
    """``extend`` of the adapters that sample whole sequences at temperature 1 (chat, Gemini): one
    proposal per (empty) prefix, requested concurrently, each with its own seed derived from ``seed``.
    ``model`` supplies ``provider``, ``model``, ``temperature_mode`` and ``logprobs_refused``."""
    check_temperature(temperature, allow_zero=False)
    limits = per_prefix_limits(max_new_tokens, len(prefixes))
    name = f"{model.provider}/{model.model}"
    if any(len(p) for p in prefixes):
        raise CapabilityError(f"{name} cannot continue a token prefix (whole sequences only)")
    if model.temperature_mode == "strict" and temperature != 1.0:
        raise CapabilityError(f"{name} samples proposals at temperature 1 only (temperature_mode='strict')")
    if model.logprobs_refused:
        raise LogprobsUnsupportedError(f"{name} rejected log-probs earlier")
    return list(await asyncio.gather(*(one(prompt, m, derive_seed(seed, i)) for i, m in enumerate(limits))))


def without_sdk_retries(client: Any) -> Any:
    """The client with the SDK's own retries off (openai/anthropic ``with_options(max_retries=0)``)."""
    retries = getattr(client, "max_retries", 0)
    if isinstance(retries, int) and retries > 0 and hasattr(client, "with_options"):
        log.info("turning off the SDK client's own retries (max_retries=%d → 0); genesis_ps retries once", retries)
        return client.with_options(max_retries=0)
    return client




LOGPROB_TOLERANCE = 1e-4
"""How far above 0 a returned log-prob may be (rounding) before the response is refused; it is clipped to 0."""


def _bad(provider: str, what: str) -> MalformedResponseError:
    return MalformedResponseError(f"{provider}: refused a response: {what}", provider=provider)


def checked_logprobs(provider: str, values: Sequence[Any], what: str = "token log-prob") -> list[float]:
    """``values`` as floats <= 0; :class:`MalformedResponseError` for a non-number, NaN, ±inf or > 0."""
    out: list[float] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(provider, f"{what} {i} is {v!r}, not a number")
        f = float(v)
        if not math.isfinite(f) or f > LOGPROB_TOLERANCE:
            raise _bad(provider, f"{what} {i} is {f!r}; log-probs must be finite and <= 0")
        out.append(min(f, 0.0))
    return out


def check_coverage(provider: str, pieces: Sequence[Any] | None, text: str, *, n: int, reported: int | None,
                   finish: str | None) -> None:  # fmt: skip
    """The token strings ``pieces`` (None: not comparable, e.g. token ids) spell ``text``, and the ``n``
    log-probs match the provider's ``reported`` completion-token count."""
    if pieces is not None:
        if not all(isinstance(p, str) for p in pieces):
            raise _bad(provider, "a returned token is not a string")
        joined = "".join(pieces)
        if joined != text:
            common = next((i for i, (a, b) in enumerate(zip(joined, text, strict=False)) if a != b),
                          min(len(joined), len(text)))  # fmt: skip
            raise _bad(provider, f"its {n} log-prob tokens spell {len(joined)} characters, the text has {len(text)} "
                                 f"(they agree on the first {common})")  # fmt: skip
    if reported is not None and not (reported == n or (finish == "stop" and reported == n + 1)):
        raise _bad(provider, f"{n} log-probs for {reported} completion tokens (usage)")


def check_top_logprobs(provider: str, tops: Sequence[Any], k: int, sampled: Sequence[str] | None,
                       values: Sequence[float]) -> list[dict[str, float]]:  # fmt: skip
    """Each position's top-k alternatives as ``{token: log-prob}`` (from pairs or a mapping), checked."""
    if len(tops) != len(values):
        raise _bad(provider, f"{len(tops)} top-k lists for {len(values)} tokens")
    out: list[dict[str, float]] = []
    for i, entry in enumerate(tops):
        pairs = list(entry.items()) if isinstance(entry, dict) else list(entry or ())
        if len(pairs) > k + 1:
            raise _bad(provider, f"top-k list {i} has {len(pairs)} entries for k = {k}")
        if not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise _bad(provider, f"top-k list {i} is not (token, log-prob) pairs")
        lps = checked_logprobs(provider, [v for _, v in pairs], what=f"top-k log-prob at position {i}:")
        alts = dict(zip((t for t, _ in pairs), lps, strict=True))
        if alts and math.fsum(math.exp(v) for v in alts.values()) > 1.0 + 1e-3:
            raise _bad(provider, f"top-k list {i} has probabilities summing past 1")
        s = sampled[i] if sampled is not None else None
        if s is not None and s in alts and abs(alts[s] - values[i]) > 1e-3:
            raise _bad(provider, f"token {i} has log-prob {values[i]!r} but {alts[s]!r} in its top-k list")
        out.append(alts)
    return out


def remember_client_key(client: Any) -> None:
    """Register the API key inside an SDK client, so :func:`~genesis_ps.providers.keys.redact` blanks it."""
    for holder in (client, getattr(client, "_api_client", None)):
        key = getattr(holder, "api_key", None)
        if isinstance(key, str) and len(key) >= 8:
            register_secret(key)
