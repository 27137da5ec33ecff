"""LangGraph assembly: the state contract, one subgraph per layer (plan, sica, darwin, default), the
power_sample / single_shot pair inside each, routes, build_graph."""

from genesis_ps.graph.build import build_graph, default_retry_policy
from genesis_ps.graph.chat import ChatModelAdapter
from genesis_ps.graph.generation import GenerationPair, build_generation_graph
from genesis_ps.graph.rollout import in_rollout, power_decision, request_id_for, rollout_bucket
from genesis_ps.graph.routes import DEFAULT_ROUTES, RouteContext, RouteRegistry, TaskOutcome, register_route
from genesis_ps.graph.state import GraphContext, GraphState, InputState, OutputState

__all__ = [
    "DEFAULT_ROUTES",
    "ChatModelAdapter",
    "GenerationPair",
    "GraphContext",
    "GraphState",
    "InputState",
    "OutputState",
    "RouteContext",
    "RouteRegistry",
    "TaskOutcome",
    "build_generation_graph",
    "build_graph",
    "default_retry_policy",
    "in_rollout",
    "power_decision",
    "register_route",
    "request_id_for",
    "rollout_bucket",
]
