"""Task routes: which subgraph or handler carries out a task of a given type — the extension point.

Built in: ``reasoning`` → the ``sica`` subgraph (:mod:`~genesis_ps.graph.sica_route`), ``code`` → the
``darwin`` subgraph (:mod:`~genesis_ps.graph.darwin_route`); every other type → the ``default``
subgraph. Register your own before ``build_graph`` (the graph's nodes are fixed when it compiles):

- an **async handler** ``async def handler(task, deps, ctx) -> TaskOutcome`` — ``task`` is the
  :class:`~genesis_ps.planners.Task`; ``deps`` the outcomes of its dependencies (all ``done``: a task
  whose dependency failed is skipped and never reaches a route); ``ctx`` a :class:`RouteContext` whose
  ``await ctx.generate(prompt, layer=..., params=None, power=None)`` runs the power_sample /
  single_shot pair (flags, rollout, budget and fallbacks applied and recorded). It runs in the graph's
  ``handler`` node. Raise only for infrastructure failures that should stop the run so it can be resumed
  (a retryable :class:`~genesis_ps.errors.ProviderError`); anything else is recorded as a failed task.
  ``interrupt()`` inside pauses the run (``Command(resume=...)`` continues it).
- a **compiled LangGraph subgraph** — drawn, streamed and checkpointed as the node ``route_<type>``;
  it reads ``task``, ``task_text``, ``request``, ``request_id``, ``deps`` and writes ``output`` (and
  ``score``) or a whole ``outcome`` dict.
- the name of a built-in subgraph (``"sica"``, ``"darwin"``, ``"default"``).

Use :func:`register_route` (the process-wide :data:`DEFAULT_ROUTES`) or your own :class:`RouteRegistry`
passed to ``build_graph(routes=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.graph.default_route import layer_for_type
from genesis_ps.graph.outcome import Handler, RouteContext, TaskOutcome

__all__ = [
    "BUILTIN",
    "DEFAULT_ROUTES",
    "Handler",
    "RouteContext",
    "RouteRegistry",
    "TaskOutcome",
    "layer_for_type",
    "register_route",
]

BUILTIN = ("sica", "darwin", "default")
"""The built-in task subgraphs."""

Route = Any
"""An async handler, a compiled graph, or the name of a built-in subgraph."""


def _is_graph(route: Any) -> bool:
    from langgraph.pregel import Pregel

    return isinstance(route, Pregel)


class RouteRegistry:
    """Task type → route. Unregistered types take the ``default`` subgraph."""

    def __init__(self, builtin: Mapping[str, Route] | None = None) -> None:
        self._routes: dict[str, Route] = dict({"reasoning": "sica", "code": "darwin"} if builtin is None else builtin)
        for task_type, route in self._routes.items():
            self._check(task_type, route)

    @staticmethod
    def _check(task_type: str, route: Route) -> None:
        if isinstance(route, str):
            if route not in BUILTIN:
                raise ConfigError("route", f"unknown built-in route {route!r} for {task_type!r}; one of {BUILTIN}")
        elif not (_is_graph(route) or callable(route)):
            raise ConfigError("handler", f"route for {task_type!r} must be an async callable or a compiled graph")

    def register(self, task_type: str, route: Route) -> None:
        self._check(task_type, route)
        self._routes[task_type] = route

    def unregister(self, task_type: str) -> None:
        self._routes.pop(task_type, None)

    def get(self, task_type: str) -> tuple[str, Route]:
        """``(node name, route)``: a built-in subgraph's name, ``handler``, or ``route_<type>``."""
        route = self._routes.get(task_type, "default")
        if isinstance(route, str):
            return route, route
        return (f"route_{task_type}" if _is_graph(route) else "handler"), route

    def handlers(self) -> dict[str, Handler]:
        return {t: r for t, r in self._routes.items() if not isinstance(r, str) and not _is_graph(r)}

    def subgraphs(self) -> dict[str, Any]:
        return {t: r for t, r in self._routes.items() if not isinstance(r, str) and _is_graph(r)}

    def types(self) -> list[str]:
        return sorted(self._routes)

    def copy(self) -> RouteRegistry:
        return RouteRegistry(builtin=self._routes)


DEFAULT_ROUTES = RouteRegistry()
"""The process-wide registry ``build_graph`` uses unless given its own."""


def register_route(task_type: str, route: Route) -> None:
    """Register ``route`` (handler, compiled subgraph, or built-in name) for ``task_type`` in
    :data:`DEFAULT_ROUTES`."""
    DEFAULT_ROUTES.register(task_type, route)
