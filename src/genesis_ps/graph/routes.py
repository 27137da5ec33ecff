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
Built-in routes for other task types are named in ``_BUILTIN_ROUTES`` as ``"module:attribute"`` strings
and imported on first use, so heavy modules load only when a task needs them; until a module exists,
its type uses :func:`default_handler`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from genesis_ps.planners.dag import Task
from genesis_ps.planners.prompts import task_prompt
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = [
    "DEFAULT_ROUTES",
    "Handler",
    "RouteContext",
    "RouteRegistry",
    "TaskOutcome",
    "default_handler",
    "get_route",
    "layer_for_type",
    "register_route",
]

log = logging.getLogger(__name__)


@dataclass
class TaskOutcome:
    """What happened to one task. ``status``: ``done``, ``failed`` or ``skipped``."""

    task_id: str
    status: str
    output: str = ""
    score: float | None = None
    score_details: dict[str, Any] = field(default_factory=dict)
    route: str = "default"
    generations: list[dict[str, Any]] = field(default_factory=list)
    """``GenerationResult.to_dict()`` of every generation the handler made."""
    fallbacks: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_generated(self) -> int:
        return sum(int(g.get("tokens_generated", 0)) for g in self.generations)

    @property
    def tokens_returned(self) -> int:
        return sum(int(g.get("tokens_returned", 0)) for g in self.generations)

    def add_generation(self, g: GenerationResult) -> None:
        self.generations.append(g.to_dict())
        if g.fallback:
            self.fallbacks.append(g.fallback)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TaskOutcome:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


GenerateFn = Callable[..., Awaitable[GenerationResult]]


@dataclass
class RouteContext:
    """Everything a handler may use. ``generate`` runs the power_sample / single_shot node pair."""

    request: str
    request_id: str
    model: TokenModel
    generate: GenerateFn
    """``await generate(prompt, *, layer="htdag", params=None, power=None) -> GenerationResult``."""
    settings: Any
    max_new_tokens: int = 96
    temperature: float | None = None
    """Temperature of single-shot generation (the graph's ``temperature``); None keeps the layer's."""
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    """Evaluator per task type (``evaluators.base.Evaluator``); the default handler scores with it."""
    emit: Callable[[dict[str, Any]], None] = lambda event: None
    """Send a progress event to the graph's custom stream."""

    def layer_params(self, layer: str) -> SamplerParams:
        """The layer's sampler parameters with this graph's token limit (and single-shot temperature)."""
        params: SamplerParams = self.settings.layer(layer).params
        if self.temperature is not None:
            params = params.with_(temperature=self.temperature)
        return params.with_(max_new_tokens=self.max_new_tokens)


Handler = Callable[[Task, Mapping[str, TaskOutcome], RouteContext], Awaitable[TaskOutcome]]

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
        from genesis_ps.evaluators.base import safe_evaluate

        s = safe_evaluate(ev, out.output, {"task": task.description, "request": ctx.request})
        out.score, out.score_details = s.value, {**dict(s.details), "evaluator": s.evaluator, "error": s.error}
        from genesis_ps.observability import record_evaluation

        record_evaluation(s.evaluator or getattr(ev, "name", "?"), s.value, layer=layer)
    return out


_BUILTIN_ROUTES: dict[str, str] = {
    "reasoning": "genesis_ps.loops.route:sica_handler",
    "code": "genesis_ps.operators.route:darwin_handler",
}


class RouteRegistry:
    """Task type → handler. Unregistered types use :func:`default_handler`."""

    def __init__(self, builtin: Mapping[str, str] | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        self._lazy: dict[str, str] = dict(_BUILTIN_ROUTES if builtin is None else builtin)

    def register(self, task_type: str, handler: Handler) -> None:
        if not callable(handler):
            from genesis_ps.errors import ConfigError

            raise ConfigError("handler", f"route for {task_type!r} must be an async callable")
        self._handlers[task_type] = handler
        self._lazy.pop(task_type, None)

    def unregister(self, task_type: str) -> None:
        self._handlers.pop(task_type, None)
        self._lazy.pop(task_type, None)

    def get(self, task_type: str) -> tuple[str, Handler]:
        """``(route name, handler)`` for a task type."""
        if task_type in self._handlers:
            return task_type, self._handlers[task_type]
        target = self._lazy.get(task_type)
        if target:
            mod_name, _, attr = target.partition(":")
            try:
                handler = getattr(importlib.import_module(mod_name), attr)
            except (ImportError, AttributeError) as exc:
                log.warning("route %s for %r unavailable (%s); using the default route", target, task_type, exc)
                self._lazy.pop(task_type, None)
            else:
                self._handlers[task_type] = handler
                return task_type, handler
        return "default", default_handler

    def types(self) -> list[str]:
        return sorted({*self._handlers, *self._lazy})

    def copy(self) -> RouteRegistry:
        new = RouteRegistry(builtin=self._lazy)
        new._handlers = dict(self._handlers)
        return new


DEFAULT_ROUTES = RouteRegistry()
"""The process-wide registry ``build_graph`` uses unless given its own."""


def register_route(task_type: str, handler: Handler) -> None:
    """Register ``handler`` for ``task_type`` in :data:`DEFAULT_ROUTES`."""
    DEFAULT_ROUTES.register(task_type, handler)


def get_route(task_type: str) -> tuple[str, Handler]:
    return DEFAULT_ROUTES.get(task_type)
