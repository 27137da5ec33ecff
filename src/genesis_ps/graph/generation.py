"""The generation pair: the nodes ``power_sample ─(fallback edge)→ single_shot`` that every layer's
subgraph contains, and every generation in the graph goes through.

A step node asks for text by writing a request (:func:`gen_request`) and routing to ``power_sample``
(a power request) or straight to ``single_shot`` (a plain one); the answer comes back in ``gen_result``
at the node the request names (``then``). ``power_sample`` takes the fallback edge to ``single_shot`` —
the reason recorded in ``GenerationResult.fallback`` — when:

- ``flag_off`` — the master flag or the layer's flag is off (the default);
- ``rollout`` — the request id falls outside ``POWER_SAMPLING_ROLLOUT_PERCENT``;
- ``no_logprobs`` — the model returns no log-probabilities;
- ``budget`` — the run's token budget (``POWER_SAMPLING_BUDGET_TOKENS``) is spent, or the sampler says so;
- ``circuit_open`` — the provider's circuit breaker is open;
- ``provider_error:…`` / ``sampling_error:…`` / ``timeout`` — power sampling raised.

``disabled`` marks a power method asked for with ``power=False``. ``single_shot`` runs a fallback on the
graph's fallback model when one is configured (``extra["fallback_model"]`` names it); when the model it
would use has an open breaker and there is no distinct fallback, the answer says so (``gen_error``)
instead of raising. Retryable provider errors propagate (the node's retry policy; then the run stops
and can be resumed). Invalid parameters (:class:`~genesis_ps.errors.ConfigError`) always raise.

:class:`GenerationPair` compiles the pair alone, for code outside the graph (the CLI's ``decompose``,
route handlers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from genesis_ps import observability as obs
from genesis_ps.errors import CircuitOpenError, ConfigError, GenesisError, ProviderError, ProviderTimeoutError
from genesis_ps.generation import fallback_reason, power_sample, single_shot, unanswered
from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.rollout import power_decision
from genesis_ps.graph.state import GenKeys
from genesis_ps.graph.wire import anode, params_dict, params_of, prompt_dict, prompt_of, read_route
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.settings import Settings

__all__ = ["GenerationPair", "add_generation_pair", "build_generation_graph", "gen_request", "result_of"]


def gen_request(prompt: Prompt, params: SamplerParams, *, then: str, layer: str, step: str, power: bool | None,
                request_id: str = "", spent_tokens: int = 0, tilt: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A step's state update asking for one generation; the answer returns to node ``then``.

    ``power``: None — the flags and rollout decide; True — power-sample regardless of them; False — a
    plain sample (a ``disabled`` fallback if ``params.method`` is a power method). ``tilt``: the request
    whose decomposition quality tilts the power sample (the graph's ``plan_lam``)."""
    req = {"prompt": prompt_dict(prompt), "params": params_dict(params), "then": then, "layer": layer,
           "step": step, "power": power, "request_id": request_id, "spent_tokens": spent_tokens, "tilt": tilt,
           "reason": "disabled" if power is False and params.method != "single" else None}  # fmt: skip
    plain = params.method == "single" or power is False
    return {"gen": req, "gen_result": None, "gen_error": None, "route": "single_shot" if plain else "power_sample"}


def result_of(state: Mapping[str, Any]) -> GenerationResult | None:
    d = state.get("gen_result")
    return None if d is None else GenerationResult.from_dict(d)


class _Nodes:
    """The two node functions over one graph's shared configuration."""

    def __init__(self, env: GraphEnv) -> None:
        self.env = env

    def _gate(self, settings: Settings, req: Mapping[str, Any]) -> str | None:
        if req.get("power") is None:
            ok, why = power_decision(settings, str(req["layer"]), str(req.get("request_id") or ""))
            if not ok:
                return why
        if self.env.model.capabilities.logprobs == "none":
            return "no_logprobs"
        if settings.budget_tokens is not None and int(req.get("spent_tokens", 0)) >= settings.budget_tokens:
            return "budget"
        return None

    async def _timed(self, coro: Any) -> Any:
        if self.env.node_timeout_s is None:
            return await coro
        try:
            async with asyncio.timeout(self.env.node_timeout_s):
                return await coro
        except TimeoutError as exc:  # retryable: the node's retry policy decides
            raise ProviderTimeoutError(f"generation node timed out after {self.env.node_timeout_s}s") from exc

    async def power_sample(self, state: Mapping[str, Any]) -> dict[str, Any]:
        with obs.layer_scope(str(state["gen"]["layer"])):
            return await self._power_sample(state)

    async def single_shot(self, state: Mapping[str, Any]) -> dict[str, Any]:
        with obs.layer_scope(str(state["gen"]["layer"])):
            return await self._single_shot(state)

    async def _power_sample(self, state: Mapping[str, Any]) -> dict[str, Any]:
        req, settings = dict(state["gen"]), self.env.current_settings()
        why = self._gate(settings, req)
        if why is not None:
            return {"gen": {**req, "reason": why}, "route": "single_shot"}
        budget = None
        if settings.budget_tokens is not None or settings.budget_requests is not None:
            left = None if settings.budget_tokens is None else settings.budget_tokens - int(req.get("spent_tokens", 0))
            budget = Budget(max_tokens=None if left is None else max(1, left), max_requests=settings.budget_requests)
        kw = {**self.env.sampler_kwargs, **(self.env.tilt(str(req["tilt"])) if req.get("tilt") else {})}
        try:
            result = await self._timed(power_sample(self.env.model, prompt_of(req["prompt"]), params_of(req["params"]),
                                                    budget=budget, **kw))  # fmt: skip
        except (ConfigError, GraphBubbleUp):
            raise
        except Exception as exc:  # sampling raised: take the fallback edge, record why
            return {"gen": {**req, "reason": fallback_reason(exc), "error": f"{type(exc).__name__}: {exc}"},
                    "route": "single_shot"}  # fmt: skip
        result.extra.setdefault("layer", req["layer"])
        obs.record_outcome(result, layer=str(req["layer"]))
        return {"gen_result": result.to_dict(), "gen_error": None, "route": req["then"]}

    async def _single_shot(self, state: Mapping[str, Any]) -> dict[str, Any]:
        req = state["gen"]
        p, prompt, reason = params_of(req["params"]), prompt_of(req["prompt"]), req.get("reason")
        primary, fb = self.env.model, self.env.fallback_model
        model = fb if (reason and fb is not None) else primary

        async def once(m: TokenModel) -> GenerationResult:
            r: GenerationResult = await self._timed(single_shot(m, prompt, max_new_tokens=p.max_new_tokens,
                                                                temperature=p.temperature, seed=p.seed))  # fmt: skip
            return r

        try:
            try:
                result = await once(model)
            except CircuitOpenError:
                if model is not primary or fb is None:
                    raise
                model, reason = fb, reason or "circuit_open"  # the primary's breaker is open: the fallback answers
                result = await once(fb)
        except CircuitOpenError as exc:
            result = unanswered(model, p, reason or "circuit_open", exc, distinct=fb is not None)
        except ConfigError:
            raise
        except GenesisError as exc:
            if isinstance(exc, ProviderError) and exc.retryable:
                raise
            return {"gen_result": None, "gen_error": f"{type(exc).__name__}: {exc}", "route": req["then"]}
        result.requested_method, result.fallback = p.method, reason
        result.extra["layer"] = req["layer"]
        if model is fb and fb is not None and model is not primary:
            result.extra["fallback_model"] = f"{fb.provider}/{fb.model}"
        if req.get("error"):
            result.extra["fallback_error"] = req["error"]
        obs.record_outcome(result, layer=str(req["layer"]))
        error = result.extra.get("error") if result.extra.get("unanswered") else None
        return {"gen_result": result.to_dict(), "gen_error": error, "route": req["then"]}


def add_generation_pair(builder: StateGraph[Any, Any, Any, Any], env: GraphEnv, consumers: Sequence[str], *,
                        retry: RetryPolicy | None = None) -> None:  # fmt: skip
    """Add ``power_sample`` and ``single_shot`` to a layer's subgraph; their answers go to ``consumers``.
    Spans and metrics carry the requesting layer (``gen["layer"]``)."""
    nodes = _Nodes(env)
    builder.add_node("power_sample", anode("power_sample", nodes.power_sample), retry_policy=retry)
    builder.add_node("single_shot", anode("single_shot", nodes.single_shot), retry_policy=retry)
    builder.add_conditional_edges("power_sample", read_route, ["single_shot", *consumers])
    builder.add_conditional_edges("single_shot", read_route, list(consumers))


class _PairState(GenKeys, total=False):
    trace: dict[str, Any]


def build_generation_graph(model: TokenModel, *, settings: Settings, fallback_model: TokenModel | None = None,
                           sampler_kwargs: Mapping[str, Any] | None = None) -> Any:  # fmt: skip
    """Compile the pair alone: ``START → power_sample ─→ single_shot → END`` (no checkpointer)."""
    env = GraphEnv(model=model, settings=settings, fallback_model=fallback_model,
                   sampler_kwargs=dict(sampler_kwargs or {}))  # fmt: skip
    g = StateGraph(_PairState)
    add_generation_pair(g, env, [END])
    g.add_conditional_edges(START, read_route, ["power_sample", "single_shot"])
    return g.compile(checkpointer=False, name="generation_pair")


class GenerationPair:
    """Callable front of the compiled pair: ``await pair(prompt, layer=..., params=..., power=...)``."""

    def __init__(self, model: TokenModel, *, settings: Settings, fallback_model: TokenModel | None = None,
                 sampler_kwargs: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.model, self.settings, self.fallback_model = model, settings, fallback_model
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.graph = build_generation_graph(model, settings=settings, fallback_model=fallback_model,
                                            sampler_kwargs=sampler_kwargs)  # fmt: skip

    async def __call__(self, prompt: Prompt, *, layer: str = "htdag", params: SamplerParams | None = None,
                       power: bool | None = None, request_id: str = "", spent_tokens: int = 0,
                       sampler_kwargs: Mapping[str, Any] | None = None) -> GenerationResult:  # fmt: skip
        """Generate once through the pair. ``sampler_kwargs`` (``reward``, ``lam``) apply to this call's
        power sample only."""
        p = params or self.settings.layer(layer).params
        state = gen_request(prompt, p, then=END, layer=layer, step="generate", power=power, request_id=request_id,
                            spent_tokens=spent_tokens)  # fmt: skip
        graph = self.graph
        if sampler_kwargs:
            graph = build_generation_graph(self.model, settings=self.settings, fallback_model=self.fallback_model,
                                           sampler_kwargs={**self.sampler_kwargs, **sampler_kwargs})  # fmt: skip
        out = await graph.ainvoke(state)
        result = result_of(out)
        if result is None:
            raise ProviderError(str(out.get("gen_error") or "no answer"), provider=self.model.provider)
        return result
