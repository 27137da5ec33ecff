"""Where a run's checkpoints go: a SQLite file, or PostgreSQL for deployments with several workers.

:func:`checkpoint_target` validates the target at the edge (before any model loads):

- a file path (or ``sqlite:///path``) → SQLite (``langgraph-checkpoint-sqlite``, always installed);
- ``postgresql://…`` / ``postgres://…`` → PostgreSQL (the ``postgres`` extra:
  ``pip install 'genesis_ps[postgres]'``, i.e. ``langgraph-checkpoint-postgres`` and ``psycopg[binary]``);
- any other URL → :class:`~genesis_ps.errors.ConfigError` naming the flag.

:func:`open_checkpointer` opens the saver (creating Postgres's tables on first use).
"""

from __future__ import annotations

import contextlib
import re
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


@contextlib.asynccontextmanager
async def open_checkpointer(target: str | Path) -> AsyncIterator[Any]:
    """An async LangGraph checkpointer for ``target`` (see :func:`checkpoint_target`)."""
    kind, where = checkpoint_target(target)
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        Path(where).parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(where) as saver:
            yield saver
        return
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise ConfigError(_FLAG, "PostgreSQL checkpoints need the postgres extra: "
                                 "pip install 'genesis_ps[postgres]'") from None  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        try:
            pg: Any = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(where))
            await pg.setup()  # creates the tables on first use
        except Exception as exc:  # psycopg's connection errors: a clear message, not a traceback
            raise ConfigError(_FLAG, f"cannot use {redact_url(where)}: {type(exc).__name__}: {exc}") from exc
        yield pg
