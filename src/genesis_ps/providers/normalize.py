"""Translate SDK and transport exceptions into :mod:`genesis_ps.errors` types, at one boundary.

:func:`normalize_errors` is the one context manager placed around every SDK call. It recognises the
official SDKs' exceptions (openai, anthropic, google-genai) and httpx/httpx2 transport errors by their
class names and attributes, so no SDK is imported here. Mapping:

* HTTP 429 → :class:`RateLimitError` (``retry_after`` from ``retry-after-ms`` or ``Retry-After``)
* 408 and our own ``asyncio`` timeouts → :class:`ProviderTimeoutError`
* 409 → :class:`ProviderServerError` (retryable); 5xx (and Anthropic's 529) → :class:`ProviderServerError`
* 401/403 → :class:`AuthenticationError`; other 4xx → :class:`BadRequestError` (not retried), except a
  4xx whose message is about log-probabilities → :class:`LogprobsUnsupportedError`
* connection failures/resets → :class:`ProviderConnectionError`; SDK timeouts → :class:`ProviderTimeoutError`
* invalid JSON, failed response validation (including pydantic validation inside the SDK call: build
  request objects such as genai's ``GenerateContentConfig`` *outside* the boundary) → :class:`MalformedResponseError`

A connection failure names what it was and where: ``connection refused to 127.0.0.1:8000``, read from
the SDK exception's request URL and the ``ConnectionRefusedError`` (or deepest ``OSError``) in its chain.

Programmer errors (``TypeError``, ``ValueError``, …) pass through untouched, and so do errors that are
already genesis_ps errors — except inside :func:`shape_errors`, placed around the parsing of a response,
where they mean the response had an undocumented shape (``choices`` an object, strings for numbers) and
become :class:`MalformedResponseError` (retryable). Messages go through
:func:`~genesis_ps.providers.keys.redact`, and the SDK exception the error chains to is scrubbed in place
(:func:`~genesis_ps.providers.keys.scrub_exception`): a key echoed by a server appears in no message,
``__cause__`` or ``__context__``.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from genesis_ps.errors import (
    AuthenticationError,
    BadRequestError,
    GenesisError,
    LogprobsUnsupportedError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
)
from genesis_ps.providers.keys import redact, scrub_exception

__all__ = [
    "connection_detail",
    "is_provider_failure",
    "mentions_logprobs",
    "normalize_errors",
    "parse_retry_after",
    "shape_errors",
    "translate",
]

_SDK_ROOTS = ("openai", "anthropic", "google", "httpx", "httpx2", "httpcore", "httpcore2", "pydantic_core")
_TIMEOUT_NAMES = {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "WriteTimeout", "PoolTimeout"}
_CONNECTION_NAMES = {"APIConnectionError", "TransportError", "NetworkError", "ConnectError", "RemoteProtocolError",
                     "ReadError", "WriteError", "ProtocolError", "ClientConnectorError", "ServerDisconnectedError"}
_MALFORMED_NAMES = {"APIResponseValidationError", "ValidationError", "DecodingError"}
_LOGPROBS = re.compile(r"log[\s_-]?prob", re.IGNORECASE)
_MAX_MESSAGE = 500


def mentions_logprobs(message: str) -> bool:
    """Whether an error message is about log-probabilities (how providers phrase a refusal)."""
    return bool(_LOGPROBS.search(message))


def parse_retry_after(headers: Mapping[str, str] | Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _from_sdk(exc: BaseException) -> bool:
    return any(c.__module__.split(".")[0] in _SDK_ROOTS for c in type(exc).__mro__ if c.__module__)


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _message_of(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    text = msg if isinstance(msg, str) and msg else str(exc)
    text = redact(re.sub(r"^Error code: \d{3} - ", "", text))
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def translate(exc: BaseException, provider: str = "") -> BaseException:
    """The genesis_ps error for ``exc``, or ``exc`` itself when it is not a provider failure."""
    if isinstance(exc, GenesisError):
        return exc
    if isinstance(exc, TimeoutError) and not _from_sdk(exc):
        return ProviderTimeoutError(f"{provider}: the call timed out", provider=provider)
    if isinstance(exc, json.JSONDecodeError):
        return MalformedResponseError(f"{provider}: the response is not valid JSON ({exc.msg})", provider=provider)
    if not _from_sdk(exc):
        return exc  # programmer errors and anything we do not know pass through untouched
    names = _names(exc)
    message = _message_of(exc)
    status = _status_of(exc)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if status is not None and "APIResponseValidationError" not in names:
        kw: dict[str, Any] = {"provider": provider, "status_code": status}
        text = f"{provider}: HTTP {status}: {message}"
        if status == 429:
            return RateLimitError(text, retry_after=parse_retry_after(headers), **kw)
        if status == 408:
            return ProviderTimeoutError(text, **kw)
        if status == 409 or status >= 500:
            return ProviderServerError(text, retry_after=parse_retry_after(headers), **kw)
        if status in (401, 403):
            return AuthenticationError(text, **kw)
        if mentions_logprobs(message):
            return LogprobsUnsupportedError(text)
        return BadRequestError(text, **kw)
    if names & _TIMEOUT_NAMES:
        return ProviderTimeoutError(f"{provider}: timed out: {message}", provider=provider)
    if names & _CONNECTION_NAMES:
        return ProviderConnectionError(f"{provider}: {connection_detail(exc)}", provider=provider)
    if names & _MALFORMED_NAMES:
        return MalformedResponseError(f"{provider}: malformed response: {message}", provider=provider)
    return ProviderError(f"{provider}: {type(exc).__name__}: {message}", provider=provider)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    stack: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while stack and len(seen) < 32:
        e = stack.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]


def _where(exc: BaseException) -> str:
    for e in _chain(exc):
        url = getattr(e.__dict__.get("request") or e.__dict__.get("_request"), "url", None)
        host = getattr(url, "host", None)
        if host:
            port = getattr(url, "port", None) or {"http": 80, "https": 443}.get(str(getattr(url, "scheme", "")), "")
            return f"{host}:{port}" if port else str(host)
    return ""


def connection_detail(exc: BaseException) -> str:
    """What a connection failure was and where: ``connection refused to 127.0.0.1:8000`` …"""
    where = _where(exc)
    to = f" to {where}" if where else ""
    errors = [e for e in _chain(exc) if isinstance(e, OSError)]
    if any(isinstance(e, ConnectionRefusedError) for e in errors):
        return f"connection refused{to}"
    if any(isinstance(e, ConnectionResetError) for e in errors):
        return f"connection reset{to}"
    deepest = errors[-1] if errors else exc
    text = redact(str(deepest) or type(deepest).__name__)[:_MAX_MESSAGE]
    return f"connection failed{to}: {text}"


@contextmanager
def normalize_errors(provider: str) -> Iterator[None]:
    """Re-raise SDK/transport failures inside the block as genesis_ps errors, chained (``from``) to the
    SDK exception after scrubbing it of keys."""
    try:
        yield
    except BaseException as exc:
        new = translate(exc, provider)
        if new is exc:
            raise
        scrub_exception(exc)
        # An authentication failure's SDK exception may echo (part of) the key: do not chain it either.
        raise new from (None if isinstance(new, AuthenticationError) else exc)


_SHAPE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError)


@contextmanager
def shape_errors(provider: str) -> Iterator[None]:
    """Around the parsing of a response: an ordinary exception there means an undocumented shape, raised
    as a retryable :class:`MalformedResponseError` that names it."""
    try:
        yield
    except GenesisError:
        raise
    except _SHAPE_ERRORS as exc:
        raise MalformedResponseError(
            f"{provider}: malformed response ({type(exc).__name__}: {redact(str(exc))[:200]})", provider=provider
        ) from None


def is_provider_failure(exc: BaseException) -> bool:
    """Whether ``exc`` signals that the provider is unhealthy (what a circuit breaker counts)."""
    return isinstance(exc, ProviderError) and exc.retryable
