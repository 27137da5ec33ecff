"""What every node of one compiled graph shares: the models, the settings, the evaluators, the limits.

Per-invocation overrides come from the runtime context (:class:`~genesis_ps.graph.state.GraphContext`),
read with LangGraph's ``get_runtime()`` so the nodes need no extra parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.loops.sica_state import SicaConfig
from genesis_ps.operators.evolution import EvolutionConfig
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import TokenModel
from genesis_ps.settings import Settings

__all__ = ["DEFAULT_DARWIN", "DEFAULT_SICA", "GraphEnv", "runtime_context"]

DEFAULT_SICA = SicaConfig(max_iterations=3, power_max_iterations=2)
"""The ``sica`` subgraph's stop rule unless ``build_graph(sica_config=...)`` says otherwise."""
DEFAULT_DARWIN = EvolutionConfig(max_generations=2, initial_population=1, offspring=2, max_calls=6, power=True)
"""The ``darwin`` subgraph's limits (with an evaluator) unless ``build_graph(darwin_config=...)``."""


def runtime_context() -> Any:
    """The current run's context object (None outside a run or when none was given)."""
    try:
        from langgraph.runtime import get_runtime

        return get_runtime().context
    except (RuntimeError, KeyError, AttributeError):
        return None


@dataclass
class GraphEnv:
    """The shared configuration (see :func:`~genesis_ps.graph.build_graph` for each field's meaning)."""

    model: TokenModel
    settings: Settings
    fallback_model: TokenModel | None = None
    """A different model for single-shot fallbacks (the app's chat model, or the settings' fallback)."""
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    planner_options: Mapping[str, Any] = field(default_factory=dict)
    plan_max_new_tokens: int = 192
    task_max_new_tokens: int = 96
    temperature: float | None = None
    plan_lam: float = 0.0
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    sica_config: SicaConfig = DEFAULT_SICA
    darwin_config: EvolutionConfig = DEFAULT_DARWIN
    node_timeout_s: float | None = None

    def _ctx(self) -> Any:
        from genesis_ps.graph.state import GraphContext

        c = runtime_context()
        return c if isinstance(c, GraphContext) else None

    def current_settings(self) -> Settings:
        """This run's settings (``GraphContext.settings`` overrides the graph's)."""
        c = self._ctx()
        return c.settings if c is not None and c.settings is not None else self.settings

    def context_request_id(self) -> str | None:
        c = self._ctx()
        return None if c is None else c.request_id

    def task_tokens(self) -> int:
        c = self._ctx()
        return (c.task_max_new_tokens if c is not None else None) or self.task_max_new_tokens

    def layer_params(self, layer: str, max_new_tokens: int | None = None) -> SamplerParams:
        """A layer's sampler parameters with this graph's token limit and single-shot temperature."""
        p = self.current_settings().layer(layer).params
        if self.temperature is not None:
            p = p.with_(temperature=self.temperature)
        return p.with_(max_new_tokens=max_new_tokens or self.task_tokens())

    def evaluator(self, task_type: str) -> Any:
        return self.evaluators.get(task_type) or self.evaluators.get("*")

    def tilt(self, request: str) -> dict[str, Any]:
        """The plan's quality tilt (``plan_lam`` > 0): sampler keywords for a tilted power sample."""
        if self.plan_lam <= 0:
            return {}
        from genesis_ps.evaluators.base import as_reward
        from genesis_ps.planners.quality import DecompositionEvaluator

        return {"reward": as_reward(DecompositionEvaluator(), {"request": request}), "lam": self.plan_lam}

    def fallback_name(self) -> str | None:
        m = self.fallback_model
        return None if m is None else f"{m.provider}/{m.model}"
