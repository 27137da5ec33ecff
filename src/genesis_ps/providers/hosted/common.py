"""What the HTTP adapters share: usage counts, argument checks, seeds, the whole-sequence ``extend``
of the chat-style adapters, and turning off an SDK client's own retries. Imports no SDK."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError
from genesis_ps.sampling.protocol import Prompt, Segment

__all__ = [
    "TemperatureMode",
    "Usage",
    "check_temperature",
    "derive_seed",
    "per_prefix_limits",
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


