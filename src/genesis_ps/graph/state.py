"""The graph's state contract: what a caller (or a parent graph) gives, what it gets back, and the
working state that stays inside.

- :class:`InputState` — ``request`` and/or ``messages`` (the last human message is the request when no
  ``request`` is given); optional ``request_id`` and a ready ``dag``.
- :class:`OutputState` — ``answer``, ``tasks`` (one record per task), ``summary``; and ``messages`` with
  the answer appended, when the request came in as messages.
- :class:`GraphState` — the above plus the private working state, all under one namespaced key,
  ``genesis_ps``, which the ``start`` node resets for every new request (so a second request on the same
  thread starts fresh). A parent graph sees only the input and output keys: its own ``plan``, ``dag`` or
  ``outcomes`` keys are never read or overwritten.

Every value is a JSON primitive (dicts, lists, strings, numbers) except LangChain ``messages``, which
LangGraph's default serializer stores; checkpoints need no custom serializer. The schemas are
``typing_extensions.TypedDict``, so ``get_input_jsonschema()`` / ``get_output_jsonschema()`` work on
Python 3.11.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from genesis_ps.settings import Settings

__all__ = [
    "NAMESPACE",
    "GenKeys",
    "GraphContext",
    "GraphState",
    "InputState",
    "OutputState",
    "TaskIn",
    "TaskOut",
    "TaskState",
    "merge_work",
]

NAMESPACE = "genesis_ps"
"""The one state key holding the graph's working state."""


def merge_work(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer of the working state: ``{"reset": True, ...}`` replaces it (a new request); otherwise keys
    are set, and ``outcomes`` (task id → outcome) merge, so parallel tasks each add their own."""
    left, right = dict(left or {}), dict(right or {})
    if right.pop("reset", False):
        return right
    outcomes = {**(left.get("outcomes") or {}), **(right.pop("outcomes", None) or {})}
    return {**left, **right, "outcomes": outcomes}


class InputState(TypedDict, total=False):
    """What the graph reads from its caller."""

    request: str
    """The request to decompose and carry out."""
    messages: Annotated[list[AnyMessage], add_messages]
    """A conversation; without ``request``, its last human message is the request."""
    request_id: str
    """Stable id for rollout bucketing (default: ``GraphContext.request_id``, else a hash of the request)."""
    dag: dict[str, Any]
    """``{"tasks": [{"id", "description", "type", "depends_on"}]}``: planning is skipped."""


class OutputState(TypedDict, total=False):
    """What the graph gives back."""

    answer: str
    """The outputs of the DAG's sink tasks that finished (joined by blank lines)."""
    tasks: list[dict[str, Any]]
    """Per task: id, description, type (and who typed it), status, route, output, score, error, methods,
    acceptance, measured cost multiplier, fallbacks, generations."""
    summary: dict[str, Any]
    """Counts (done / failed / skipped), measured tokens and cost multiplier, every fallback with its
    reason, the plan's record (method, fallback, quality, attempts)."""
    messages: Annotated[list[AnyMessage], add_messages]


class GraphState(InputState, OutputState, total=False):
    """The compiled graph's full state: input and output keys plus the private ``genesis_ps`` key."""

    genesis_ps: Annotated[dict[str, Any], merge_work]


class GenKeys(TypedDict, total=False):
    """The keys a layer's generation pair (``power_sample`` / ``single_shot``) reads and writes."""

    gen: dict[str, Any]
    """The request: prompt, params, layer, power, reason, the node to return to (``then``)."""
    gen_result: dict[str, Any] | None
    """``GenerationResult.to_dict()`` of the answer."""
    gen_error: str | None
    """Why no answer came back (a non-retryable provider error, an open breaker with no fallback)."""
    route: str
    """The node a step chose to go to next (read by the conditional edges)."""


class TaskIn(TypedDict, total=False):
    """What a task subgraph receives through ``Send`` (one task of a wave)."""

    task: dict[str, Any]
    task_text: str
    """The task with the overall goal and its dependencies' outputs, as one text."""
    request: str
    request_id: str
    deps: dict[str, dict[str, Any]]
    spent_tokens: int
    trace: dict[str, Any]


class TaskOut(TypedDict, total=False):
    """What a task subgraph gives back: its outcome, under the namespaced key."""

    genesis_ps: Annotated[dict[str, Any], merge_work]


class TaskState(TaskIn, TaskOut, GenKeys, total=False):
    """The state of a task subgraph (default route, registered subgraphs)."""

    output: str
    """A registered subgraph's answer (or set ``outcome`` to a full ``TaskOutcome`` dict)."""
    score: float | None
    outcome: dict[str, Any]


@dataclass(frozen=True)
class GraphContext:
    """Per-invocation runtime context (``graph.invoke(state, context=GraphContext(...))``); every field is
    optional and overrides what ``build_graph`` was given."""

    request_id: str | None = None
    settings: Settings | None = None
    task_max_new_tokens: int | None = None
