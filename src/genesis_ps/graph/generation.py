"""The generation pair: a small LangGraph graph ``gate → power_sample ─(fallback edge)→ single_shot``.

Every generation in the graph (the decomposition, every task) runs through it. The fallback edge to
``single_shot`` is taken, and the reason recorded in ``GenerationResult.fallback``, when:

- ``flag_off`` — the master flag or the layer's flag is off (the default);
- ``rollout`` — the request id falls outside ``POWER_SAMPLING_ROLLOUT_PERCENT``;
- ``disabled`` — the caller asked for no power sampling;
- ``no_logprobs`` — the model returns no log-probabilities;
- ``budget`` — the run's token budget (``POWER_SAMPLING_BUDGET_TOKENS``) is spent, or the sampler says so;
- ``circuit_open`` — the provider's circuit breaker is open (:class:`~genesis_ps.errors.CircuitOpenError`);
- ``provider_error:…`` / ``sampling_error:…`` / ``timeout`` — power sampling raised
  (:func:`genesis_ps.generation.fallback_reason`).

Invalid parameters (:class:`~genesis_ps.errors.ConfigError`) are never a reason to fall back: they raise.
A requested method ``single`` goes straight to ``single_shot`` and is not a fallback.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from genesis_ps.errors import ConfigError
from genesis_ps.generation import fallback_reason, power_sample, single_shot
from genesis_ps.graph.rollout import power_decision
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.settings import Settings

__all__ = ["GenState", "GenerationPair", "build_generation_graph"]


class GenState(TypedDict, total=False):
    """State of one generation (in memory only: the pair runs without a checkpointer)."""

    prompt: Prompt
    layer: str
    params: SamplerParams
    request_id: str
    power: bool | None
    """None: flags and rollout decide; False: single-shot (``disabled``); True: power-sample regardless."""
    spent_tokens: int
    sampler_kwargs: dict[str, Any]
    """Per-call additions to the pair's ``sampler_kwargs`` (e.g. a reward tilt for this generation)."""
    route: str
    reason: str | None
    error: str | None
    result: GenerationResult


def build_generation_graph(
    model: TokenModel,
    *,
    settings: Settings,
    fallback_model: TokenModel | None = None,
    sampler_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Compile the pair. ``fallback_model`` (e.g. a wrapped LangChain chat model) serves ``single_shot``;
    ``sampler_kwargs`` go to :func:`power_sample` (``reward``, ``lam``, ``evaluator``, ``progress``)."""
    kw = dict(sampler_kwargs or {})

    def gate(state: GenState) -> dict[str, Any]:
        p = state["params"]
        if p.method == "single":
            return {"route": "single_shot", "reason": None}
        power = state.get("power")
        if power is False:
            return {"route": "single_shot", "reason": "disabled"}
        if power is None:
            ok, why = power_decision(settings, state.get("layer", "htdag"), state.get("request_id", ""))
            if not ok:
                return {"route": "single_shot", "reason": why}
        if model.capabilities.logprobs == "none":
            return {"route": "single_shot", "reason": "no_logprobs"}
        if settings.budget_tokens is not None and state.get("spent_tokens", 0) >= settings.budget_tokens:
            return {"route": "single_shot", "reason": "budget"}
        return {"route": "power_sample", "reason": None}

    async def power_node(state: GenState) -> dict[str, Any]:
        budget = None
        if settings.budget_tokens is not None or settings.budget_requests is not None:
            left = None if settings.budget_tokens is None else settings.budget_tokens - state.get("spent_tokens", 0)
            budget = Budget(max_tokens=None if left is None else max(1, left), max_requests=settings.budget_requests)
        try:
            extra = {**kw, **(state.get("sampler_kwargs") or {})}
            result = await power_sample(model, state["prompt"], state["params"], budget=budget, **extra)
        except ConfigError:
            raise
        except Exception as exc:  # sampling raised: take the fallback edge, record why
            return {"route": "single_shot", "reason": fallback_reason(exc), "error": f"{type(exc).__name__}: {exc}"}
        result.extra.setdefault("layer", state.get("layer"))
        return {"route": END, "result": result}

    async def single_node(state: GenState) -> dict[str, Any]:
        p = state["params"]
        m = fallback_model or model
        result = await single_shot(
            m, state["prompt"], max_new_tokens=p.max_new_tokens, temperature=p.temperature, seed=p.seed
        )
        result.requested_method = p.method
        result.fallback = state.get("reason")
        result.extra["layer"] = state.get("layer")
        if state.get("error"):
            result.extra["fallback_error"] = state["error"]
        return {"result": result}

    g = StateGraph(GenState)
    g.add_node("gate", gate)
    g.add_node("power_sample", power_node)
    g.add_node("single_shot", single_node)
    g.add_edge(START, "gate")
    g.add_conditional_edges("gate", lambda s: s["route"], ["power_sample", "single_shot"])
    g.add_conditional_edges("power_sample", lambda s: s["route"], {"single_shot": "single_shot", END: END})
    g.add_edge("single_shot", END)
    return g.compile(checkpointer=False, name="generation_pair")


class GenerationPair:
    """Callable front of the compiled pair: ``await pair(prompt, layer=..., params=..., power=...)``."""

    def __init__(
        self,
        model: TokenModel,
        *,
        settings: Settings,
        fallback_model: TokenModel | None = None,
        sampler_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.graph = build_generation_graph(
            model, settings=settings, fallback_model=fallback_model, sampler_kwargs=sampler_kwargs
        )

    async def __call__(
        self,
        prompt: Prompt,
        *,
        layer: str = "htdag",
        params: SamplerParams | None = None,
        power: bool | None = None,
        request_id: str = "",
        spent_tokens: int = 0,
        sampler_kwargs: dict[str, Any] | None = None,
    ) -> GenerationResult:
        """Generate once through the pair. ``sampler_kwargs`` (``reward``, ``lam``, ``evaluator``) apply to
        this call's power sample only."""
        p = params or self.settings.layer(layer).params
        state: GenState = {
            "prompt": prompt,
            "layer": layer,
            "params": p,
            "request_id": request_id,
            "power": power,
            "spent_tokens": spent_tokens,
            "sampler_kwargs": dict(sampler_kwargs or {}),
        }
        out = await self.graph.ainvoke(state)
        result: GenerationResult = out["result"]
        from genesis_ps.observability import record_outcome

        record_outcome(result, layer=layer)  # generations / fallbacks by reason, for the fallback-rate alert
        return result
