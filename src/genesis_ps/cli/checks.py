"""Checks the commands run on their arguments before any model loads: each failure is a
:class:`~genesis_ps.errors.ConfigError` naming the flag (one line on stderr, exit status 2)."""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.providers.hosted.common import check_base_url
from genesis_ps.providers.registry import PROVIDERS
from genesis_ps.sampling.params import check_temperature

__all__ = ["check_checkpoint", "check_float", "check_int", "check_model_flags", "check_out_dir", "check_temp"]


def check_int(flag: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(flag, f"must be an integer {bound}, got {value!r}")
    return value


def check_float(flag: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ConfigError(flag, f"must be a finite number >= {low:g}, got {value!r}")
    return float(value)


def check_temp(flag: str, value: Any) -> float:
    try:
        return check_temperature(value)
    except ConfigError as e:
        raise ConfigError(flag, str(e).split(": ", 1)[-1]) from None


def check_model_flags(provider: str, model: str | None, base_url: str | None) -> None:
    """``--provider`` is known, ``--base-url`` is an http(s) URL, and a ``local`` ``--model`` path exists."""
    if provider not in PROVIDERS:
        raise ConfigError("--provider", f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if base_url is not None:
        try:
            check_base_url(base_url)
        except ConfigError as e:
            raise ConfigError("--base-url", str(e).split(": ", 1)[-1]) from None
    if provider == "local":
        if not model:
            raise ConfigError("--model", "provider 'local' needs --model PATH (a transformers model directory)")
        if not os.path.exists(model):
            raise ConfigError("--model", f"the path {model!r} does not exist (provider 'local' loads a transformers "
                                         "model directory)")  # fmt: skip


def check_out_dir(flag: str, out: str | None) -> None:
    """The report directory exists (or can be made) and is writable."""
    if out is None:
        return
    path = Path(out).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".genesis_ps_check_"):
            pass
    except OSError as exc:
        raise ConfigError(flag, f"cannot write reports to {out!r}: {exc.strerror or exc}") from None


def check_checkpoint(path: Path, resume: str | None) -> None:
    """The checkpoint file can be created or is a SQLite database that is neither locked nor read-only, and
    (with ``--resume``) holds the thread."""
    flag = "--checkpoint-db"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(flag, f"cannot create the directory of {str(path)!r}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise ConfigError(flag, f"{str(path)!r} is a directory, not a SQLite file")
    existed = path.exists()
    if resume is not None and not existed:
        raise ConfigError("--resume", f"no checkpoint file {str(path)!r}, so no thread {resume!r} to resume")
    try:
        con = sqlite3.connect(str(path), timeout=1.0)
    except sqlite3.Error as exc:
        raise ConfigError(flag, f"cannot open {str(path)!r}: {exc}") from None
    try:
        con.execute("PRAGMA schema_version").fetchone()
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        if resume is not None:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            found = "checkpoints" in tables and con.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (resume,)).fetchone()  # fmt: skip
            if not found:
                raise ConfigError("--resume", f"no checkpoint for thread {resume!r} in {str(path)!r}")
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise ConfigError(flag, f"{str(path)!r} is locked by another process (another genesis-ps run?)") from None
        if "readonly" in text or "read-only" in text:
            raise ConfigError(flag, f"{str(path)!r} is not writable") from None
        raise ConfigError(flag, f"{str(path)!r}: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise ConfigError(flag, f"{str(path)!r} is not a SQLite database (corrupt or truncated?): {exc}") from None
    finally:
        con.close()
        if not existed and path.exists() and path.stat().st_size == 0:
            path.unlink()  # only a probe: leave no empty file behind
