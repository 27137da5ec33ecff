"""Graph state (checkpointed: plain JSON-able values only) and the runtime context (not checkpointed)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from genesis_ps.settings import Settings

__all__ = ["GraphContext", "GraphState", "TaskInput", "merge_dicts"]


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for ``outcomes``: parallel tasks each add their own key."""
    return {**(left or {}), **(right or {})}


class GraphState(TypedDict, total=False):
    """The graph's state. A parent graph shares any of these keys to embed the compiled graph as a node.

    ``request`` is the input; ``dag`` may also be given (planning is then skipped).
    """

    request: str
    request_id: str
    """Stable id for rollout bucketing; defaults to a hash of the request."""
    dag: dict[str, Any]
    """``{"tasks": [{"id", "description", "type", "depends_on"}]}``."""
    plan: dict[str, Any]
    """The decomposition record (method, fallback, quality, tokens, attempts …), without the tasks."""
    outcomes: Annotated[dict[str, dict[str, Any]], merge_dicts]
    """Task id → ``TaskOutcome.to_dict()``."""
    fallbacks: Annotated[list[dict[str, Any]], operator.add]
    """Every fallback taken: ``{"where": "plan" | task id, "reason": ...}``."""
    summary: dict[str, Any]


class TaskInput(TypedDict):
    """What the ``execute`` node receives through ``Send`` for one task."""

    task: dict[str, Any]
    request: str
    request_id: str
    deps: dict[str, dict[str, Any]]
    spent_tokens: int


@dataclass(frozen=True)
class GraphContext:
    """Per-invocation runtime context (``graph.ainvoke(state, context=GraphContext(...))``); every field is
    optional and overrides what ``build_graph`` was given."""

    request_id: str | None = None
    settings: Settings | None = None
    task_max_new_tokens: int | None = None
