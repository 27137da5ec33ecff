"""Task routes: which async handler carries out a task of a given type.

A handler has this signature::

    async def handler(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome

- ``task`` — the :class:`~genesis_ps.planners.Task` to carry out (``id``, ``description``, ``type``,
  ``depends_on``).
- ``deps`` — the outcomes of the task's dependencies, by task id (all have ``status == "done"``; a task
  whose dependency failed is skipped by the graph and never reaches a handler).
- ``ctx`` — a :class:`RouteContext`: the request and its id, the models, the settings, and
  ``await ctx.generate(prompt, layer=..., params=None, power=None)``, which runs the graph's
  ``power_sample`` / ``single_shot`` node pair (flags, rollout, budget and fallbacks applied and recorded).
  Use it for every generation so fallbacks stay visible; ``ctx.layer_params(layer)`` gives the layer's
  sampler parameters.

Return a :class:`TaskOutcome` (``status`` ``done`` or ``failed``, ``output``, optional ``score``, and the
:class:`~genesis_ps.sampling.GenerationResult` records in ``generations``). Raise only for
infrastructure failures that should stop the run so it can be resumed (a retryable
:class:`~genesis_ps.errors.ProviderError` after the node's retries); anything else a handler raises is
recorded as a failed task.

Register with :func:`register_route` (or on your own :class:`RouteRegistry` passed to ``build_graph``).
Built in: ``reasoning`` → SICA (:mod:`~genesis_ps.graph.sica_route`), ``code`` → SE-Darwin
(:mod:`~genesis_ps.graph.darwin_route`); every other type uses :func:`default_handler`.
"""

from __future__ import annotations

from collections.abc import Mapping

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import safe_evaluate
from genesis_ps.graph.darwin_route import darwin_handler
from genesis_ps.graph.outcome import Handler, RouteContext, TaskOutcome
from genesis_ps.graph.sica_route import sica_handler
from genesis_ps.observability import record_evaluation
from genesis_ps.planners.dag import Task
from genesis_ps.planners.prompts import task_prompt
from genesis_ps.sampling.protocol import Prompt

__all__ = [
    "DEFAULT_ROUTES",
    "Handler",
    "RouteContext",
    "RouteRegistry",
    "TaskOutcome",
    "default_handler",
    "layer_for_type",
    "register_route",
]



_TYPE_LAYER = {"reasoning": "sica", "code": "se_darwin"}


def layer_for_type(task_type: str) -> str:
    """The settings layer whose flag governs a task type's generation (``htdag`` for most)."""
    return _TYPE_LAYER.get(task_type, "htdag")


async def default_handler(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
    """Generate the task's answer through the power_sample / single_shot pair, then score it with the
    evaluator registered for its type, if any."""
    context = [(d, deps[d].output) for d in task.depends_on if d in deps]
    prompt: Prompt = task_prompt(ctx.request, task.description, context)
    layer = layer_for_type(task.type)
    g = await ctx.generate(prompt, layer=layer, params=ctx.layer_params(layer))
    out = TaskOutcome(task_id=task.id, status="done", output=g.text.strip(), route="default")
    out.add_generation(g)
    if not out.output:
        out.status, out.error = "failed", "the model returned empty text"
    ev = ctx.evaluators.get(task.type) or ctx.evaluators.get("*")
    if ev is not None and out.status == "done":
        s = safe_evaluate(ev, out.output, {"task": task.description, "request": ctx.request})
        out.score, out.score_details = s.value, {**dict(s.details), "evaluator": s.evaluator, "error": s.error}
        record_evaluation(s.evaluator or getattr(ev, "name", "?"), s.value, layer=layer)
    return out


BUILTIN_ROUTES: dict[str, Handler] = {"reasoning": sica_handler, "code": darwin_handler}


class RouteRegistry:
    """Task type → handler. Unregistered types use :func:`default_handler`."""

    def __init__(self, builtin: Mapping[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(BUILTIN_ROUTES if builtin is None else builtin)

    def register(self, task_type: str, handler: Handler) -> None:
        if not callable(handler):
            raise ConfigError("handler", f"route for {task_type!r} must be an async callable")
        self._handlers[task_type] = handler

    def unregister(self, task_type: str) -> None:
        self._handlers.pop(task_type, None)

    def get(self, task_type: str) -> tuple[str, Handler]:
        """``(route name, handler)`` for a task type."""
        if task_type in self._handlers:
            return task_type, self._handlers[task_type]
        return "default", default_handler

    def types(self) -> list[str]:
        return sorted(self._handlers)

    def copy(self) -> RouteRegistry:
        return RouteRegistry(builtin=self._handlers)


DEFAULT_ROUTES = RouteRegistry()
"""The process-wide registry ``build_graph`` uses unless given its own."""


def register_route(task_type: str, handler: Handler) -> None:
    """Register ``handler`` for ``task_type`` in :data:`DEFAULT_ROUTES`."""
    DEFAULT_ROUTES.register(task_type, handler)
