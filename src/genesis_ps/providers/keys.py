"""API keys: read from the environment as secrets, and kept out of logs, reprs and error messages.

Every key read through :func:`env_key` (or handed to an adapter inside its client) is remembered (in this
process only) so that :func:`redact` can blank it out of any text, on top of the usual key shapes
(``sk-…``, ``sk-ant-…``, ``AIza…``, ``Bearer …``). :func:`scrub_exception` does the same to an exception
and every exception it chains to, so a server that echoes the key in an error body leaks it nowhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

__all__ = ["KEY_ENV", "env_key", "key_present", "redact", "register_secret", "scrub_exception"]

KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "openai-compatible": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY",),
}
"""Environment variables holding each hosted provider's key, in order of preference."""

_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{6,}|sk-[A-Za-z0-9_\-]{6,}|AIza[0-9A-Za-z_\-]{10,}|(?<=Bearer )[A-Za-z0-9._\-]{6,})"
)
_KNOWN: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so that :func:`redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        _KNOWN.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-shaped string replaced by ``[REDACTED]``."""
    for secret in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return _PATTERNS.sub("[REDACTED]", text)


def env_key(names: Sequence[str], environ: Mapping[str, str] | None = None) -> SecretStr | None:
    """The first non-empty variable among ``names``, as a :class:`~pydantic.SecretStr` (never printed)."""
    env = os.environ if environ is None else environ
    for name in names:
        value = env.get(name, "").strip()
        if value:
            register_secret(value)
            return SecretStr(value)
    return None


def key_present(provider: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a key for ``provider`` is set (the value itself is not returned)."""
    env = os.environ if environ is None else environ
    return any(env.get(n, "").strip() for n in KEY_ENV.get(provider, ()))


def _redact_any(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace")).encode()
    if depth < 8 and isinstance(value, Mapping):
        return {k: _redact_any(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple)):
        return type(value)(_redact_any(v, depth + 1) for v in value)
    return value


_TEXT_ATTRS = ("message", "body", "doc", "msg", "text", "details")
_OBJECT_ATTRS = ("response", "request", "_request", "_response")


def scrub_exception(exc: BaseException) -> None:
    """Redact secrets, in place, from ``exc`` and every exception in its ``__cause__``/``__context__``
    chain (and exception groups): ``args`` and text attributes (``message``, ``body``, ``doc`` …) are
    redacted, and HTTP request/response objects — whose headers hold the key — are dropped."""
    stack: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while stack and len(seen) < 64:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        try:
            e.args = tuple(_redact_any(a) for a in e.args)
        except (TypeError, AttributeError):
            pass
        own = getattr(e, "__dict__", {})
        for attr in _TEXT_ATTRS:
            if attr in own:
                own[attr] = _redact_any(own[attr])
        for attr in _OBJECT_ATTRS:
            if attr in own:
                own[attr] = None
        stack += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
