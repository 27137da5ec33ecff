"""``build_graph``: the compiled HTDAG graph ``plan → schedule ⇉ execute (Send, parallel waves) → finish``.

Usable on its own (``await graph.ainvoke({"request": ...})``), as a node of a parent graph that shares
state keys (``parent.add_node("genesis", graph)``), or from inside a parent's node (its own state).
Every generation inside goes through the ``power_sample`` / ``single_shot`` pair
(:mod:`genesis_ps.graph.generation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, TimeoutPolicy

from genesis_ps.errors import ConfigError, ProviderError
from genesis_ps.graph.nodes import Nodes
from genesis_ps.graph.routes import DEFAULT_ROUTES, RouteRegistry
from genesis_ps.graph.state import GraphContext, GraphState, TaskInput
from genesis_ps.sampling.params import check_temperature
from genesis_ps.sampling.protocol import TokenModel
from genesis_ps.settings import Settings

__all__ = ["build_graph", "default_retry_policy"]


def _retry_on(exc: Exception) -> bool:
    return isinstance(exc, NodeTimeoutError) or (isinstance(exc, ProviderError) and exc.retryable)


def default_retry_policy() -> RetryPolicy:
    """One node-level retry for a node timeout or a retryable provider error. Adapters already retry
    single calls; this retries the whole task once, so the two layers never multiply beyond 2×."""
    return RetryPolicy(max_attempts=2, initial_interval=1.0, max_interval=10.0, retry_on=_retry_on)


def build_graph(
    model: TokenModel | None = None,
    *,
    chat_model: Any = None,
    settings: Settings | None = None,
    routes: RouteRegistry | None = None,
    evaluators: Mapping[str, Any] | None = None,
    checkpointer: Any = None,
    planner_options: Mapping[str, Any] | None = None,
    plan_max_new_tokens: int = 192,
    task_max_new_tokens: int = 96,
    temperature: float | None = None,
    plan_lam: float = 0.0,
    retry_policy: RetryPolicy | None = None,
    node_timeout_s: float | None = None,
    sampler_kwargs: Mapping[str, Any] | None = None,
    name: str = "genesis_ps",
) -> Any:
    """Compile the graph.

    - ``model``: a :class:`~genesis_ps.sampling.TokenModel` (power sampling needs one with log-probs).
    - ``chat_model``: any LangChain ``BaseChatModel``; it serves single-shot generation (and everything,
      when ``model`` is None — then power sampling always takes the ``no_logprobs`` fallback edge).
    - ``settings``: feature flags and parameters (default: ``Settings.from_env()``; all flags off).
    - ``routes``: task type → handler (default: :data:`~genesis_ps.graph.routes.DEFAULT_ROUTES`).
    - ``evaluators``: task type (or ``"*"``) → Evaluator used by the default route to score outputs.
    - ``checkpointer``: any LangGraph checkpointer (SQLite, Postgres, memory); None inherits the
      parent's when embedded.
    - ``planner_options``: passed to :func:`~genesis_ps.planners.decompose` (``max_depth``,
      ``max_attempts``, ``max_total_tasks``, ``style``).
    - ``temperature``: single-shot temperature for the plan and the tasks (None keeps the layers'
      ``SamplerParams.temperature``, 1.0). Power sampling is unaffected (it samples at 1/α and targets p^α).
    - ``plan_lam``: λ > 0 tilts the plan's power sampling by the decomposition quality evaluator
      (target p^α·exp(λ·quality)).
    - ``retry_policy`` / ``node_timeout_s``: per-node policies for ``plan`` and ``execute``.
    """
    from genesis_ps.graph.chat import ChatModelAdapter

    if model is None and chat_model is None:
        raise ConfigError("model", "build_graph needs a TokenModel (model=) or a LangChain chat model (chat_model=)")
    fallback = ChatModelAdapter(chat_model) if chat_model is not None else None
    for pname, value in (("plan_max_new_tokens", plan_max_new_tokens), ("task_max_new_tokens", task_max_new_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(pname, f"must be an integer >= 1, got {value!r}")
    if temperature is not None:
        check_temperature(temperature)
    if isinstance(plan_lam, bool) or not isinstance(plan_lam, (int, float)) or not 0 <= plan_lam < float("inf"):
        raise ConfigError("plan_lam", f"must be a finite number >= 0, got {plan_lam!r}")
    allowed = {"max_depth", "max_attempts", "max_total_tasks", "style", "instructions"}
    bad = set(planner_options or {}) - allowed
    if bad:
        raise ConfigError("planner_options", f"unknown option(s) {sorted(bad)}; allowed: {sorted(allowed)}")
    nodes = Nodes(
        model=model or fallback,  # type: ignore[arg-type]
        settings=settings if settings is not None else Settings.from_env(),
        routes=routes or DEFAULT_ROUTES,
        fallback_model=fallback if model is not None else None,
        evaluators=dict(evaluators or {}),
        planner_options=dict(planner_options or {}),
        plan_max_new_tokens=plan_max_new_tokens,
        task_max_new_tokens=task_max_new_tokens,
        temperature=temperature,
        plan_lam=float(plan_lam),
        sampler_kwargs=dict(sampler_kwargs or {}),
    )
    retry = retry_policy or default_retry_policy()
    timeout = TimeoutPolicy(run_timeout=node_timeout_s) if node_timeout_s else None
    g = StateGraph(GraphState, context_schema=GraphContext)
    g.add_node("plan", nodes.plan, retry_policy=retry, timeout=timeout)
    g.add_node("schedule", nodes.schedule)
    g.add_node(
        "execute",
        nodes.execute,  # type: ignore[arg-type]  # langgraph's stubs miss (input, runtime) nodes with input_schema
        input_schema=TaskInput,
        retry_policy=retry,
        timeout=timeout,
    )
    g.add_node("finish", nodes.finish)
    g.add_edge(START, "plan")
    g.add_edge("plan", "schedule")
    g.add_conditional_edges("schedule", nodes.next_wave, ["execute", "finish"])
    g.add_edge("execute", "schedule")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer, name=name)
