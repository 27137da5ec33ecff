"""Retries, circuit breakers, timeouts and a concurrency limit around every provider call.

One :class:`Resilience` object guards one (provider, model). Each attempt runs as::

    semaphore (max_concurrency) → circuit breaker → normalize_errors → asyncio.timeout → SDK call

and a single tenacity retry loop wraps the attempts. This is the *only* retry layer: the factories in
:mod:`genesis_ps.providers.hosted` build SDK clients with ``max_retries=0``, and the adapters turn off
the retries of a client a user built (see docs/providers.md).

Time is injected: ``sleep`` (the retry waits; tests record them) and ``clock`` (seconds, monotonic;
it drives the retry time limit and the breaker's reset timeout).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pybreaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from genesis_ps import observability as obs
from genesis_ps.errors import CircuitOpenError, ConfigError, ProviderError
from genesis_ps.providers.normalize import is_provider_failure, normalize_errors

if TYPE_CHECKING:
    from genesis_ps.settings import Settings

__all__ = [
    "DEFAULT_BREAKERS",
    "BreakerPolicy",
    "BreakerRegistry",
    "CallStats",
    "CircuitBreaker",
    "ProviderRetryPolicy",
    "ProviderTimeoutPolicy",
    "Resilience",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, kw_only=True)
class ProviderRetryPolicy:
    """How failed calls are retried (only errors whose ``retryable`` is true are)."""

    max_retries: int = 3
    """Retries after the first attempt; 0 disables retrying."""
    initial_delay_s: float = 0.5
    """Wait before the first retry (before jitter)."""
    multiplier: float = 2.0
    """Each further wait is the previous one times this."""
    max_delay_s: float = 20.0
    """Upper bound of one backoff wait (before jitter)."""
    jitter_s: float = 0.25
    """A uniform random amount in [0, jitter_s) added to each backoff wait (not to Retry-After waits)."""
    max_total_s: float = 120.0
    """No retry starts when the time spent so far plus the next wait would exceed this."""
    max_retry_after_s: float = 60.0
    """A provider asking to wait longer than this (Retry-After) ends retrying at once."""

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError("max_retries", f"must be an integer >= 0, got {self.max_retries!r}")
        for name in ("initial_delay_s", "max_delay_s", "jitter_s", "max_total_s", "max_retry_after_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(name, f"must be >= 0, got {getattr(self, name)!r}")
        if not self.multiplier >= 1:
            raise ConfigError("multiplier", f"must be >= 1, got {self.multiplier!r}")

    def backoff(self, retry_number: int) -> float:
        """The backoff wait before retry number ``retry_number`` (1-based), without jitter."""
        return float(min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (retry_number - 1)))


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    """When the circuit breaker of a (provider, model) opens and when it tries again."""

    fail_max: int = 5
    """Consecutive failures (retryable provider errors: 429, 5xx, timeouts, resets) that open it."""
    reset_timeout_s: float = 30.0
    """Seconds it stays open; afterwards it lets a trial call through (half-open)."""

    def __post_init__(self) -> None:
        if isinstance(self.fail_max, bool) or not isinstance(self.fail_max, int) or self.fail_max < 1:
            raise ConfigError("fail_max", f"must be an integer >= 1, got {self.fail_max!r}")
        if not self.reset_timeout_s > 0:
            raise ConfigError("reset_timeout_s", f"must be > 0, got {self.reset_timeout_s!r}")


@dataclass(frozen=True, kw_only=True)
class ProviderTimeoutPolicy:
    """How long one attempt may take."""

    per_call_s: float | None = 120.0
    """Seconds per attempt (``asyncio.timeout``); None means no limit of ours."""

    def __post_init__(self) -> None:
        if self.per_call_s is not None and not self.per_call_s > 0:
            raise ConfigError("per_call_s", f"must be > 0 or None, got {self.per_call_s!r}")


class CircuitBreaker:
    """A pybreaker breaker driven by an injectable clock.

    pybreaker measures the open period with ``datetime.now``; to make it testable this wrapper records
    when the breaker opened on ``clock`` (a pybreaker listener), refuses calls itself while open, and
    moves the breaker to half-open once ``reset_timeout_s`` has passed on ``clock``. A refused call
    raises :class:`CircuitOpenError` and is not counted as a call; its message carries the failure that
    opened the breaker (``last_error``). Failures are counted with ``throw_new_error_on_trip=False``, so the
    call that trips the breaker raises its own error.
    """

    def __init__(self, name: str, policy: BreakerPolicy, *, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._opened_at: float | None = None
        self.last_error: str | None = None
        """The last failure the breaker counted (its message)."""
        breaker = self

        class _Listener(pybreaker.CircuitBreakerListener):
            def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
                if new_state is not None and new_state.name == pybreaker.STATE_OPEN:
                    breaker._opened_at = breaker._clock()

            def failure(self, cb: Any, exc: BaseException) -> None:
                breaker.last_error = str(exc) or type(exc).__name__

        self._cb = pybreaker.CircuitBreaker(
            fail_max=policy.fail_max,
            reset_timeout=policy.reset_timeout_s,
            exclude=[lambda exc: not is_provider_failure(exc)],
            listeners=[_Listener()],
            name=name,
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (an open breaker whose timeout passed reads half-open)."""
        state = str(self._cb.current_state)
        if state == pybreaker.STATE_OPEN and self._remaining() <= 0:
            return pybreaker.STATE_HALF_OPEN
        return state

    @property
    def fail_counter(self) -> int:
        return int(self._cb.fail_counter)

    def _remaining(self) -> float:
        if self._opened_at is None:
            return 0.0
        return self.policy.reset_timeout_s - (self._clock() - self._opened_at)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block as one call through the breaker, or raise :class:`CircuitOpenError`."""
        if self._cb.current_state == pybreaker.STATE_OPEN:
            remaining = self._remaining()
            if remaining > 0:
                raise self._open_error(f"retry in {remaining:.1f}s", retry_after=remaining)
            self._cb.half_open()
        try:
            with self._cb.calling():
                yield
        except pybreaker.CircuitBreakerError:  # only if pybreaker itself refuses
            raise self._open_error("refused by pybreaker") from None

    def _open_error(self, when: str, retry_after: float | None = None) -> CircuitOpenError:
        last = f"; last failure: {self.last_error}" if self.last_error else ""
        err = CircuitOpenError(
            f"circuit breaker {self.name} is open after {self.policy.fail_max} consecutive failures{last} ({when})",
            provider=self.name.split("/", 1)[0],
            retry_after=retry_after,
        )
        err.last_error = self.last_error
        return err


class BreakerRegistry:
    """One breaker per (provider, model), shared by every adapter instance that uses the registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, provider: str, model: str, policy: BreakerPolicy, *, clock: Clock = time.monotonic) -> CircuitBreaker:
        with self._lock:
            key = (provider, model)
            if key not in self._breakers:
                self._breakers[key] = CircuitBreaker(f"{provider}/{model}", policy, clock=clock)
            return self._breakers[key]

    def clear(self) -> None:
        with self._lock:
            self._breakers.clear()


DEFAULT_BREAKERS = BreakerRegistry()
"""The process-wide registry used unless a :class:`Resilience` is given its own."""


@dataclass
class CallStats:
    """Counted honestly by :class:`Resilience`: attempts made, retries, calls refused by the breaker, and
    failed attempts by error type (``MalformedResponseError`` counts responses refused by the checks)."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    refused: int = 0
    sleeps: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


class Resilience:
    """Retry + breaker + timeout + concurrency limit for one (provider, model)."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        retry: ProviderRetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeout: ProviderTimeoutPolicy | None = None,
        max_concurrency: int = 8,
        sleep: Sleep | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        breakers: BreakerRegistry | None = None,
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError("max_concurrency", f"must be an integer >= 1, got {max_concurrency!r}")
        self.provider = provider
        self.model = model
        self.retry = retry or ProviderRetryPolicy()
        self.timeout = timeout or ProviderTimeoutPolicy()
        self.max_concurrency = max_concurrency
        self._sleep = sleep or asyncio.sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self.breaker = (breakers or DEFAULT_BREAKERS).get(provider, model, breaker or BreakerPolicy(), clock=clock)
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self.stats = CallStats()

    @classmethod
    def from_settings(cls, settings: Settings, provider: str, model: str, **kw: Any) -> Resilience:
        """Policies from :class:`~genesis_ps.settings.Settings` (``POWER_SAMPLING_TIMEOUT_S`` …)."""
        total = settings.timeout_s * (settings.max_retries + 1)
        kw.setdefault("retry", ProviderRetryPolicy(max_retries=settings.max_retries, max_total_s=total))
        kw.setdefault("breaker", BreakerPolicy(fail_max=settings.breaker_fail_max,
                                               reset_timeout_s=settings.breaker_reset_s))
        kw.setdefault("timeout", ProviderTimeoutPolicy(per_call_s=settings.timeout_s))
        kw.setdefault("max_concurrency", settings.max_concurrency)
        return cls(provider, model, **kw)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            return float(retry_after)
        jitter = self._rng.uniform(0.0, self.retry.jitter_s) if self.retry.jitter_s > 0 else 0.0
        return self.retry.backoff(state.attempt_number) + jitter

    def _stop(self, started: float) -> Callable[[RetryCallState], bool]:
        def stop(state: RetryCallState) -> bool:
            if state.attempt_number > self.retry.max_retries:
                return True
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, (int, float)) and retry_after > self.retry.max_retry_after_s:
                return True
            return self._clock() - started + state.upcoming_sleep > self.retry.max_total_s

        return stop

    async def _recorded_sleep(self, seconds: float) -> None:
        self.stats.sleeps.append(seconds)
        self.stats.retries += 1
        await self._sleep(seconds)

    def _limit(self) -> asyncio.Semaphore:
        """The concurrency semaphore of the running event loop (an adapter may outlive one loop)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphore_loop = loop
        return self._semaphore

    async def _attempt(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self._limit():
            try:
                with self.breaker.guard():
                    self.stats.attempts += 1
                    with normalize_errors(self.provider):
                        async with asyncio.timeout(self.timeout.per_call_s):
                            return await fn()
            except CircuitOpenError:
                self.stats.refused += 1
                raise
            except ProviderError as exc:
                name = type(exc).__name__
                self.stats.failures[name] = self.stats.failures.get(name, 0) + 1
                obs.record_provider_error(self.provider, name)
                raise

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` (one SDK request plus the parsing of its answer) with retries; raise the last
        genesis_ps error when retries are exhausted or the error is not retryable."""
        self.stats.calls += 1
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            wait=self._wait,
            stop=self._stop(self._clock()),
            sleep=self._recorded_sleep,
            reraise=True,
        )
        result: T = await retrying(self._attempt, fn)
        return result
