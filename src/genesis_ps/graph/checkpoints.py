"""Where a run's checkpoints go: a SQLite file, or PostgreSQL for deployments with several workers.

:func:`checkpoint_target` validates the target at the edge (before any model loads):

- a file path (or ``sqlite:///path``) → SQLite (``langgraph-checkpoint-sqlite``, always installed);
- ``postgresql://…`` / ``postgres://…`` → PostgreSQL (the ``postgres`` extra:
  ``pip install 'genesis_ps[postgres]'``, i.e. ``langgraph-checkpoint-postgres`` and ``psycopg[binary]``);
- any other URL → :class:`~genesis_ps.errors.ConfigError` naming the flag.

:func:`open_checkpointer` opens the saver (creating Postgres's tables on first use). Closing it waits for
the writes still in flight: when a node raises inside a Send wave, LangGraph's ``ainvoke`` re-raises while a
sibling's checkpoint write is still running, and a SQLite connection closed under that write stays open as
a zombie holding the file's write lock, so the next run on the same file fails with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError

__all__ = ["checkpoint_target", "open_checkpointer", "redact_url"]

_FLAG = "--checkpoint-db"


def checkpoint_target(target: str | Path) -> tuple[str, str]:
    """``("sqlite", path)`` or ``("postgres", url)``; :class:`ConfigError` for anything else."""
    s = str(target).strip()
    if not s:
        raise ConfigError(_FLAG, "must be a SQLite file path or a postgresql:// URL")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", s)
    if m is None:
        return "sqlite", str(Path(s).expanduser())
    scheme = m.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return "postgres", s
    if scheme == "sqlite":
        return "sqlite", str(Path(m.group(2)).expanduser())
    raise ConfigError(_FLAG, f"unsupported checkpoint URL scheme {scheme!r}: give a SQLite file path or a "
                             "postgresql://user:password@host:port/database URL")  # fmt: skip


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for logs)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


DRAIN_TIMEOUT_S = 30.0


def _draining(base: Any) -> Any:
    """``base`` with its writes counted, and ``drain()`` to wait until none is in flight."""

    class Draining(base):  # type: ignore[misc]
        _in_flight = 0

        async def _counted(self, write: Any, *args: Any, **kwargs: Any) -> Any:
            self._in_flight += 1
            try:
                return await write(*args, **kwargs)
            finally:
                self._in_flight -= 1

        async def aput(self, *args: Any, **kwargs: Any) -> Any:
            return await self._counted(super().aput, *args, **kwargs)

        async def aput_writes(self, *args: Any, **kwargs: Any) -> Any:
            return await self._counted(super().aput_writes, *args, **kwargs)

        async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
            """Wait until no write is in flight (False if ``timeout_s`` passed first)."""
            deadline = time.monotonic() + timeout_s
            await asyncio.sleep(0)  # let a write that was scheduled but not started begin
            while self._in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            return not self._in_flight

    Draining.__name__ = Draining.__qualname__ = base.__name__
    return Draining


@contextlib.asynccontextmanager
async def open_checkpointer(target: str | Path) -> AsyncIterator[Any]:
    """An async LangGraph checkpointer for ``target`` (see :func:`checkpoint_target`).

    On exit (normal or not) it waits up to :data:`DRAIN_TIMEOUT_S` for writes still in flight, then closes.
    """
    kind, where = checkpoint_target(target)
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        Path(where).parent.mkdir(parents=True, exist_ok=True)
        async with _draining(AsyncSqliteSaver).from_conn_string(where) as saver:
            try:
                yield saver
            finally:
                await saver.drain()
        return
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise ConfigError(_FLAG, "PostgreSQL checkpoints need the postgres extra: "
                                 "pip install 'genesis_ps[postgres]'") from None  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        try:
            pg: Any = await stack.enter_async_context(_draining(AsyncPostgresSaver).from_conn_string(where))
            await pg.setup()  # creates the tables on first use
        except Exception as exc:  # psycopg's connection errors: a clear message, not a traceback
            raise ConfigError(_FLAG, f"cannot use {redact_url(where)}: {type(exc).__name__}: {exc}") from exc
        try:
            yield pg
        finally:
            await pg.drain()
