"""Closing :func:`open_checkpointer` waits for the writes still in flight, so the next run on the same file
finds it unlocked (LangGraph's ``ainvoke`` can re-raise a Send-wave error while a sibling's checkpoint write
is still running; a SQLite connection closed under it lingers and keeps the write lock)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import empty_checkpoint

from genesis_ps.graph.checkpoints import open_checkpointer


def _lock_is_free(db: Path) -> bool:
    con = sqlite3.connect(str(db), timeout=0.2)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


async def test_closing_waits_for_a_write_still_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "ckpt.sqlite"
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    async with open_checkpointer(db) as saver:
        await saver.setup()
        orphan = asyncio.ensure_future(saver.aput(config, empty_checkpoint(), {}, {}))  # nobody awaits it
    assert orphan.done() and orphan.exception() is None  # it finished before the connection closed …
    assert _lock_is_free(db)  # … so the file is not left locked
    async with open_checkpointer(f"sqlite://{db}") as saver:
        assert (await saver.aget_tuple({"configurable": {"thread_id": "t"}})) is not None  # and it was written


async def test_drain_reports_a_write_that_outlives_its_timeout(tmp_path: Path) -> None:
    async with open_checkpointer(tmp_path / "ckpt.sqlite") as saver:
        release = asyncio.Event()
        stuck = asyncio.ensure_future(saver._counted(release.wait))
        assert await saver.drain(timeout_s=0.05) is False
        release.set()
        await stuck
        assert await saver.drain(timeout_s=0.05) is True
