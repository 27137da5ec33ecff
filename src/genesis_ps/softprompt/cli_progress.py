"""A rich progress display for the runner: one bar per stage (restarts finished), with a live note."""

from __future__ import annotations

from types import TracebackType
from typing import Any

__all__ = ["RichProgress"]


class RichProgress:
    """Context manager implementing :class:`~genesis_ps.softprompt.run.Progress` on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[note]}"), console=Console(stderr=True))
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._p.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._p.stop()

    def start(self, label: str, total: int) -> None:
        if self._task is not None:
            self._p.update(self._task, note="")
        self._task = self._p.add_task(label, total=total, note="")

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._p.advance(self._task, n)

    def note(self, text: str) -> None:
        if self._task is not None:
            self._p.update(self._task, note=text)
