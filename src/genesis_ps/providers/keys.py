"""API keys: read from the environment as secrets, and kept out of logs, reprs and error messages.

Every key read through :func:`env_key` is remembered (in this process only) so that :func:`redact`
can blank it out of any text, on top of the usual key shapes (``sk-…``, ``sk-ant-…``, ``AIza…``,
``Bearer …``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

__all__ = ["KEY_ENV", "env_key", "key_present", "redact", "register_secret"]

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
