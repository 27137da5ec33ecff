"""``build_graph``: the compiled graph, every layer a node or a subgraph that ``get_graph(xray=True)``
draws::

    start ─▶ plan (plan_prompt ─▶ power_sample ─(fallback)─▶ single_shot ─▶ plan_validate ─▶ plan_repair
                    │ plan_expand │ plan_heuristic ─▶ plan_done)
          ─▶ schedule ⇉ (Send, one wave of ready tasks) ─▶ sica │ darwin │ default │ handler │ route_<type>
          ─▶ schedule … ─▶ finish

Embed it as a node of a parent graph (``parent.add_node("genesis", graph)``) or call it from a parent's
node; it reads ``request`` and/or ``messages`` and writes ``answer``, ``tasks``, ``summary`` (and
``messages``) — see :mod:`genesis_ps.graph.state` for the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from genesis_ps.errors import ConfigError, ProviderError
from genesis_ps.graph import nodes
from genesis_ps.graph.darwin_route import build_darwin_graph
from genesis_ps.graph.default_route import build_default_graph, build_subgraph_route, handler_node
from genesis_ps.graph.env import DEFAULT_DARWIN, DEFAULT_SICA, GraphEnv
from genesis_ps.graph.plan_graph import build_plan_graph
from genesis_ps.graph.routes import DEFAULT_ROUTES, RouteRegistry
from genesis_ps.graph.sica_route import build_sica_graph
from genesis_ps.graph.state import GraphContext, GraphState, InputState, OutputState, TaskIn
from genesis_ps.graph.wire import bare, snode
from genesis_ps.loops.sica_state import SicaConfig
from genesis_ps.operators.evolution import EvolutionConfig
from genesis_ps.sampling.params import check_temperature
from genesis_ps.sampling.protocol import TokenModel
from genesis_ps.settings import Settings

__all__ = ["build_graph", "default_retry_policy"]


def _retry_on(exc: Exception) -> bool:
    return isinstance(exc, NodeTimeoutError) or (isinstance(exc, ProviderError) and exc.retryable)


def default_retry_policy() -> RetryPolicy:
    """One node-level retry for a node timeout or a retryable provider error. Adapters already retry
    single calls; this retries the generation node once, so the two layers never multiply beyond 2×."""
    return RetryPolicy(max_attempts=2, initial_interval=1.0, max_interval=10.0, retry_on=_retry_on)


def _check(plan_max_new_tokens: int, task_max_new_tokens: int, temperature: float | None, plan_lam: float,
           planner_options: Mapping[str, Any] | None, node_timeout_s: float | None) -> None:  # fmt: skip
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
    for key, low in (("max_attempts", 1), ("max_depth", 0), ("max_total_tasks", 1)):
        v = (planner_options or {}).get(key, low)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(key, f"must be an integer >= {low}, got {v!r}")
    if node_timeout_s is not None and not node_timeout_s > 0:
        raise ConfigError("node_timeout_s", f"must be > 0 or None, got {node_timeout_s!r}")


def _fallback(chat_model: Any, settings: Settings, temperature: float | None) -> TokenModel | None:
    """The single-shot fallback model: the app's chat model, else the settings' fallback provider."""
    if chat_model is not None:
        from genesis_ps.graph.chat import ChatModelAdapter

        return ChatModelAdapter(chat_model, settings=settings)
    if settings.fallback_provider:
        from genesis_ps.providers.registry import build_model

        return build_model(settings.fallback_provider, model=settings.fallback_model)
    return None


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
    sica_config: SicaConfig | None = None,
    darwin_config: EvolutionConfig | None = None,
    name: str = "genesis_ps",
) -> Any:
    """Compile the graph.

    - ``model``: a :class:`~genesis_ps.sampling.TokenModel` (power sampling needs one with log-probs).
    - ``chat_model``: any LangChain ``BaseChatModel``. With ``model`` it is the single-shot fallback (a
      different model, so a fallback still answers when ``model``'s breaker is open); alone it serves
      everything (power sampling then takes the ``no_logprobs`` edge). Without it,
      ``POWER_SAMPLING_FALLBACK_PROVIDER`` / ``_MODEL`` name the fallback model, if set.
    - ``settings``: flags and parameters (default ``Settings.from_env()``; all flags off).
    - ``routes``: task type → route (default :data:`~genesis_ps.graph.routes.DEFAULT_ROUTES`, read now).
    - ``evaluators``: task type (or ``"*"``) → Evaluator: SICA's scores, SE-Darwin's fitness, the default
      route's score.
    - ``checkpointer``: any LangGraph checkpointer; None inherits the parent's when embedded.
    - ``planner_options``: ``max_depth``, ``max_attempts``, ``max_total_tasks``, ``style``, ``instructions``.
    - ``temperature``: single-shot temperature of the plan and the tasks (None: the layers' own).
    - ``plan_lam``: λ > 0 tilts the plan's power sampling by decomposition quality (p^α·exp(λ·q)).
    - ``retry_policy`` / ``node_timeout_s``: per generation node (default: one retry of a retryable
      provider error or a timeout).
    - ``sica_config`` / ``darwin_config``: the loops' stop rules and budgets.
    """
    if model is None and chat_model is None:
        raise ConfigError("model", "build_graph needs a TokenModel (model=) or a LangChain chat model (chat_model=)")
    _check(plan_max_new_tokens, task_max_new_tokens, temperature, plan_lam, planner_options, node_timeout_s)
    settings = settings if settings is not None else Settings.from_env()
    fallback = _fallback(chat_model, settings, temperature)
    primary: TokenModel = model if model is not None else fallback  # type: ignore[assignment]
    env = GraphEnv(model=primary, settings=settings, fallback_model=fallback if model is not None else None,
                   evaluators=dict(evaluators or {}), planner_options=dict(planner_options or {}),
                   plan_max_new_tokens=plan_max_new_tokens, task_max_new_tokens=task_max_new_tokens,
                   temperature=temperature, plan_lam=float(plan_lam), sampler_kwargs=dict(sampler_kwargs or {}),
                   sica_config=sica_config or DEFAULT_SICA, darwin_config=darwin_config or DEFAULT_DARWIN,
                   node_timeout_s=node_timeout_s)  # fmt: skip
    reg = (routes or DEFAULT_ROUTES).copy()
    retry = retry_policy or default_retry_policy()

    g = StateGraph(GraphState, context_schema=GraphContext, input_schema=InputState, output_schema=OutputState)
    g.add_node("start", bare("start", lambda s: nodes.start(env, s)))
    g.add_node("plan", build_plan_graph(env, retry=retry))
    g.add_node("schedule", snode("schedule", nodes.schedule))
    targets = ["sica", "darwin", "default"]
    g.add_node("sica", build_sica_graph(env, retry=retry))
    g.add_node("darwin", build_darwin_graph(env, retry=retry))
    g.add_node("default", build_default_graph(env, retry=retry))
    if reg.handlers():
        g.add_node("handler", handler_node(env, reg.handlers()), input_schema=TaskIn, retry_policy=retry)
        targets.append("handler")
    for task_type, sub in reg.subgraphs().items():
        g.add_node(f"route_{task_type}", build_subgraph_route(task_type, sub))
        targets.append(f"route_{task_type}")
    g.add_node("finish", snode("finish", lambda s: nodes.finish(env, s)))
    g.add_edge(START, "start")
    g.add_conditional_edges("start", nodes.after_start, ["plan", "schedule"])
    g.add_edge("plan", "schedule")
    g.add_conditional_edges("schedule", lambda s: nodes.dispatch(env, reg, s), [*targets, "finish"])
    for t in targets:
        g.add_edge(t, "schedule")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer, name=name)
