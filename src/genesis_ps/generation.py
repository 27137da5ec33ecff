"""How every layer generates text: power sampling and single-shot with spans and metrics, the fallback
policy that joins them, and the one :class:`Generator` protocol the layers ask for text through.

- :func:`power_sample` / :func:`single_shot` — :mod:`genesis_ps.sampling`'s pure entry points, each a span
  (``genesis_ps.power_sample``, ``genesis_ps.single_shot``) and counted in the metrics.
- :func:`generate` — power-sample when asked, else (or when power sampling fails) single-shot, with the
  reason recorded in ``result.fallback`` (:func:`fallback_reason`).
- :class:`Generator` — ``await gen(prompt, power=..., params=None)``; :func:`model_generator` makes one
  over a :class:`~genesis_ps.sampling.TokenModel`; in the graph the route context's generation pair is one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from genesis_ps import observability as obs
from genesis_ps.errors import (
    BudgetExceededError,
    CapabilityError,
    CircuitOpenError,
    ConfigError,
    GenesisError,
    LogprobsUnsupportedError,
    ProviderError,
)
from genesis_ps.sampling.api import Progress, PromptLike, run_power_sample, run_single_shot
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward

__all__ = [
    "Generator",
    "fallback_reason",
    "generate",
    "model_generator",
    "power_sample",
    "single_shot",
    "unanswered",
]


async def power_sample(
    model: TokenModel,
    prompt: PromptLike,
    params: SamplerParams | None = None,
    *,
    reward: Reward | None = None,
    lam: float = 0.0,
    evaluator: Reward | None = None,
    budget: Budget | None = None,
    progress: Progress | None = None,
    extract_answer: Callable[[str], str | None] | None = None,
    **overrides: Any,
) -> GenerationResult:
    """Sample from p(x)^α (optionally tilted by ``exp(lam·reward(x))``) with ``params.method``.

    ``mh`` on a model that cannot continue a prefix runs whole-sequence independence MH (``imh``);
    ``smc`` on such a model runs one block of whole sequences (importance resampling). The returned
    record's ``method`` says what actually ran. Raises :class:`LogprobsUnsupportedError` when the model
    has no log-probs, :class:`ConfigError` on invalid parameters — both before any model call.
    ``extract_answer`` (text → answer or None) is what ``selection="consensus"`` votes with.
    Each call is a span (``genesis_ps.power_sample``, one child span per block) and is counted in the
    metrics (:mod:`genesis_ps.observability`).
    """
    p = (params or SamplerParams()).with_(**overrides) if overrides else (params or SamplerParams())
    attrs = dict(method=p.method, alpha=p.alpha, n_mcmc=p.n_mcmc, block_size=p.block_size,
                 provider=model.provider, model=model.model, layer=obs.current_layer())  # fmt: skip
    t0 = time.perf_counter()
    with obs.span("genesis_ps.power_sample", **attrs) as sp:
        try:
            result = await run_power_sample(model, prompt, p, reward=reward, lam=lam, evaluator=evaluator,
                                         budget=budget, progress=obs.block_progress(sp, progress),
                                         extract_answer=extract_answer)  # fmt: skip
        except BaseException as exc:
            obs.record_call(p.method, type(exc).__name__, latency_s=time.perf_counter() - t0)
            raise
        obs.set_attributes(sp, method_run=result.method, acceptance=result.acceptance_rate,
                           cost_multiplier=result.cost_multiplier, tokens_generated=result.tokens_generated,
                           budget_exhausted=result.budget_exhausted)  # fmt: skip
    obs.record_call(p.method, "ok", result, latency_s=result.latency_s)
    return result


async def single_shot(
    model: TokenModel,
    prompt: PromptLike,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    seed: int | None = None,
) -> GenerationResult:
    """One plain sample at ``temperature`` (0 = greedy where the provider supports it). A span
    (``genesis_ps.single_shot``) and counted in the metrics."""
    t0 = time.perf_counter()
    with obs.span("genesis_ps.single_shot", method="single", provider=model.provider, model=model.model,
                  layer=obs.current_layer(), temperature=temperature):  # fmt: skip
        try:
            result = await run_single_shot(model, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                        seed=seed)  # fmt: skip
        except BaseException as exc:
            obs.record_call("single", type(exc).__name__, latency_s=time.perf_counter() - t0)
            raise
    obs.record_call("single", "ok", result, latency_s=result.latency_s)
    return result


def fallback_reason(exc: BaseException) -> str:
    """A short, stable reason string for a fallback caused by ``exc`` (used in results and metrics)."""
    if isinstance(exc, LogprobsUnsupportedError):
        return "no_logprobs"
    if isinstance(exc, CapabilityError):
        return "capability"
    if isinstance(exc, BudgetExceededError):
        return "budget"
    if isinstance(exc, CircuitOpenError):
        return "circuit_open"
    if isinstance(exc, ProviderError):
        return f"provider_error:{type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"sampling_error:{type(exc).__name__}"


async def generate(
    model: TokenModel,
    prompt: PromptLike,
    params: SamplerParams | None = None,
    *,
    power: bool = True,
    disabled_reason: str = "disabled",
    fallback_model: TokenModel | None = None,
    **kwargs: Any,
) -> GenerationResult:
    """Power-sample when ``power`` is true, else (or when power sampling fails) generate single-shot.

    The fallback is never silent: ``result.fallback`` holds the reason (``disabled``, ``no_logprobs``,
    ``circuit_open``, ``budget``, ``provider_error:…``, ``sampling_error:…``) and, when an error caused it,
    ``result.extra["fallback_error"]`` its message. Invalid parameters are not a reason to fall back:
    :class:`ConfigError` propagates. The fallback runs on ``fallback_model`` when one is given
    (``result.extra["fallback_model"]`` names it); when the model it runs on has an open circuit breaker,
    the result is :func:`unanswered` (empty text, ``extra["error"]``) rather than an exception.
    """
    p = params or SamplerParams()
    with obs.span("genesis_ps.generate", method=p.method, power=power, provider=model.provider,
                  layer=obs.current_layer()) as sp:  # fmt: skip
        result = await _generate(model, prompt, p, power=power, disabled_reason=disabled_reason,
                                 fallback_model=fallback_model, **kwargs)  # fmt: skip
        obs.set_attributes(sp, fallback_reason=result.fallback, method_run=result.method)
    obs.record_outcome(result)
    return result


async def _generate(
    model: TokenModel,
    prompt: PromptLike,
    p: SamplerParams,
    *,
    power: bool,
    disabled_reason: str,
    fallback_model: TokenModel | None,
    **kwargs: Any,
) -> GenerationResult:
    reason, error = disabled_reason, ""
    if power and p.method != "single":
        try:
            return await power_sample(model, prompt, p, **kwargs)
        except ConfigError:
            raise
        except (GenesisError, TimeoutError) as exc:
            reason, error = fallback_reason(exc), str(exc) or type(exc).__name__
    fb = fallback_model or model
    is_fallback = not (not power and reason == "disabled" and p.method == "single")
    try:
        result = await single_shot(fb, prompt, max_new_tokens=p.max_new_tokens, temperature=p.temperature,
                                   seed=p.seed)  # fmt: skip
    except CircuitOpenError as exc:
        if not is_fallback:
            raise
        return unanswered(fb, p, reason, exc, distinct=fallback_model is not None)
    result.requested_method = p.method
    result.fallback = reason if is_fallback else None
    if is_fallback and error:
        result.extra["fallback_error"] = error[:500]
    if is_fallback and fallback_model is not None:
        result.extra["fallback_model"] = f"{fb.provider}/{fb.model}"
    return result


def unanswered(
    model: TokenModel, p: SamplerParams, reason: str, exc: BaseException, *, distinct: bool
) -> GenerationResult:
    """The result of a fallback that could not answer (its model's circuit breaker is open): empty text,
    the reason, and ``extra["error"]`` saying what happened and what to configure — instead of raising
    from inside the fallback."""
    hint = ("the fallback model's breaker is open too" if distinct else
            "no distinct fallback model is configured (chat_model=, or POWER_SAMPLING_FALLBACK_PROVIDER / "
            "POWER_SAMPLING_FALLBACK_MODEL)")  # fmt: skip
    return GenerationResult(
        text="", method="single", provider=model.provider, model=model.model, alpha=None, tokens_generated=0,
        tokens_returned=0, latency_s=0.0, seed=p.seed, fallback=reason, requested_method=p.method,
        extra={"error": f"unanswered: {type(exc).__name__}: {exc}; {hint}", "unanswered": True},
    )  # fmt: skip


class Generator(Protocol):
    """How planners, SICA loops and SE-Darwin operators ask for text. ``power=True`` asks for a power
    sample (which may still fall back, recorded in ``result.fallback``); ``power=False`` for one plain
    sample, which is not a fallback. ``params``, when given, replaces the generator's own parameters."""

    async def __call__(
        self, prompt: Prompt, *, power: bool, params: SamplerParams | None = None
    ) -> GenerationResult: ...


def model_generator(
    model: TokenModel,
    params: SamplerParams | None = None,
    *,
    enabled: bool = True,
    single_temperature: float | None = None,
    **sampler_kwargs: Any,
) -> Generator:
    """A :class:`Generator` over ``model``. Power requests power-sample with ``params`` when ``enabled``
    (else they fall back with reason ``flag_off``); plain requests sample once with method ``single``
    (at ``single_temperature``, default ``params.temperature``). ``sampler_kwargs`` go to
    :func:`~genesis_ps.generation.generate` (``budget``, ``reward``, ``fallback_model`` …)."""
    from genesis_ps.generation import generate

    p = params or SamplerParams()
    single = (
        p.with_(method="single")
        if single_temperature is None
        else p.with_(method="single", temperature=single_temperature)
    )

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        if power:
            pp = params or p
            return await generate(model, prompt, pp, power=enabled, disabled_reason="flag_off", **sampler_kwargs)
        sp = single if params is None else params.with_(method="single")
        return await generate(model, prompt, sp, power=False)

    return gen
