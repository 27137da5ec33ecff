"""The two entry points every layer generates through: :func:`power_sample` and :func:`single_shot`,
and :func:`generate`, which joins them with a recorded fallback."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from genesis_ps.errors import (
    BudgetExceededError,
    CapabilityError,
    ConfigError,
    GenesisError,
    LogprobsUnsupportedError,
    PromptTooLongError,
    ProviderError,
)
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel, as_prompt
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = ["Progress", "fallback_reason", "generate", "power_sample", "single_shot"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a sampler works (blocks for mh/smc, proposals for imh)."""

PromptLike = str | Prompt | Sequence[Mapping[str, str]]


def check_prompt_fits(model: TokenModel, prompt: Prompt, max_new_tokens: int) -> None:
    """Raise :class:`PromptTooLongError` before any model work when prompt + new tokens exceed context."""
    ctx = model.capabilities.context_length
    if ctx is None:
        return
    n = model.prompt_length(prompt)
    if n is not None and n + max_new_tokens > ctx:
        raise PromptTooLongError(
            "prompt",
            f"{n} prompt tokens + max_new_tokens={max_new_tokens} exceed the model's context of {ctx} tokens",
        )


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
    **overrides: Any,
) -> GenerationResult:
    """Sample from p(x)^α (optionally tilted by ``exp(lam·reward(x))``) with ``params.method``.

    ``mh`` on a model that cannot continue a prefix runs whole-sequence independence MH (``imh``);
    ``smc`` on such a model runs one block of whole sequences (importance resampling). The returned
    record's ``method`` says what actually ran. Raises :class:`LogprobsUnsupportedError` when the model
    has no log-probs, :class:`ConfigError` on invalid parameters — both before any model call.
    Each call is a span (``genesis_ps.power_sample``, one child span per block) and is counted in the
    metrics (:mod:`genesis_ps.observability`).
    """
    from genesis_ps import observability as obs

    p = (params or SamplerParams()).with_(**overrides) if overrides else (params or SamplerParams())
    attrs = dict(method=p.method, alpha=p.alpha, n_mcmc=p.n_mcmc, block_size=p.block_size,
                 provider=model.provider, model=model.model, layer=obs.current_layer())  # fmt: skip
    t0 = time.perf_counter()
    with obs.span("genesis_ps.power_sample", **attrs) as sp:
        try:
            result = await _power_sample(model, prompt, p, reward=reward, lam=lam, evaluator=evaluator,
                                         budget=budget, progress=obs.block_progress(sp, progress))  # fmt: skip
        except BaseException as exc:
            obs.record_call(p.method, type(exc).__name__, latency_s=time.perf_counter() - t0)
            raise
        obs.set_attributes(sp, method_run=result.method, acceptance=result.acceptance_rate,
                           cost_multiplier=result.cost_multiplier, tokens_generated=result.tokens_generated,
                           budget_exhausted=result.budget_exhausted)  # fmt: skip
    obs.record_call(p.method, "ok", result, latency_s=result.latency_s)
    return result


async def _power_sample(
    model: TokenModel,
    prompt: PromptLike,
    p: SamplerParams,
    *,
    reward: Reward | None,
    lam: float,
    evaluator: Reward | None,
    budget: Budget | None,
    progress: Progress | None,
) -> GenerationResult:
    """:func:`power_sample` without its span and metrics; ``p`` has the overrides applied."""
    pr = as_prompt(prompt)
    caps = model.capabilities
    if p.method == "single":
        return await _single_shot(model, pr, max_new_tokens=p.max_new_tokens, temperature=p.temperature, seed=p.seed)
    if caps.logprobs == "none":
        raise LogprobsUnsupportedError(
            f"{model.provider}/{model.model} returns no log-probabilities; power sampling needs them"
        )
    if p.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    target = Target(alpha=p.alpha, reward=reward, lam=lam)
    check_prompt_fits(model, pr, p.max_new_tokens)
    seed = p.seed if p.seed is not None else secrets.randbits(63)
    rng = np.random.default_rng(seed)
    method = p.method
    if method == "mh" and not caps.prefix_continuation:
        method = "imh"
    kwargs: dict[str, Any] = dict(target=target, rng=rng, budget=budget, evaluator=evaluator, progress=progress)
    t0 = time.perf_counter()
    if method == "mh":
        from genesis_ps.sampling.mh import run_mh

        result = await run_mh(model, pr, p, **kwargs)
    elif method == "smc":
        from genesis_ps.sampling.smc import run_smc

        if not caps.prefix_continuation:
            p = p.with_(block_size=p.max_new_tokens)
        result = await run_smc(model, pr, p, **kwargs)
    else:
        from genesis_ps.sampling.imh import run_imh

        result = await run_imh(model, pr, p, **kwargs)
    result.latency_s = time.perf_counter() - t0
    result.seed = seed
    result.requested_method = p.method
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
    from genesis_ps import observability as obs

    t0 = time.perf_counter()
    with obs.span("genesis_ps.single_shot", method="single", provider=model.provider, model=model.model,
                  layer=obs.current_layer(), temperature=temperature):  # fmt: skip
        try:
            result = await _single_shot(model, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                        seed=seed)  # fmt: skip
        except BaseException as exc:
            obs.record_call("single", type(exc).__name__, latency_s=time.perf_counter() - t0)
            raise
    obs.record_call("single", "ok", result, latency_s=result.latency_s)
    return result


async def _single_shot(
    model: TokenModel,
    prompt: PromptLike,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    seed: int | None = None,
) -> GenerationResult:
    SamplerParams(max_new_tokens=max_new_tokens, seed=seed)  # validates max_new_tokens and seed
    if not (isinstance(temperature, (int, float)) and temperature >= 0):
        raise ConfigError("temperature", f"must be >= 0, got {temperature!r}")
    pr = as_prompt(prompt)
    check_prompt_fits(model, pr, max_new_tokens)
    t0 = time.perf_counter()
    c = await model.generate(pr, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    n = c.tokens_generated
    return GenerationResult(
        text=c.text,
        method="single",
        provider=model.provider,
        model=model.model,
        alpha=None,
        tokens_generated=n,
        tokens_returned=n,
        latency_s=time.perf_counter() - t0,
        seed=seed,
        requests=1,
        logp_sum=(float(sum(c.logp)) if c.logp else None),
        eos=c.finish_reason == "stop",
        extra={"temperature": temperature, "finish_reason": c.finish_reason},
    )


def fallback_reason(exc: BaseException) -> str:
    """A short, stable reason string for a fallback caused by ``exc`` (used in results and metrics)."""
    if isinstance(exc, LogprobsUnsupportedError):
        return "no_logprobs"
    if isinstance(exc, CapabilityError):
        return "capability"
    if isinstance(exc, BudgetExceededError):
        return "budget"
    from genesis_ps.errors import CircuitOpenError

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
    ``circuit_open``, ``budget``, ``provider_error:…``, ``sampling_error:…``). Invalid parameters are
    not a reason to fall back: :class:`ConfigError` propagates.
    """
    from genesis_ps import observability as obs

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
    reason = disabled_reason
    if power and p.method != "single":
        try:
            return await power_sample(model, prompt, p, **kwargs)
        except ConfigError:
            raise
        except (GenesisError, TimeoutError) as exc:
            reason = fallback_reason(exc)
    fb = fallback_model or model
    result = await single_shot(fb, prompt, max_new_tokens=p.max_new_tokens, temperature=p.temperature, seed=p.seed)
    result.requested_method = p.method
    result.fallback = None if (not power and reason == "disabled" and p.method == "single") else reason
    return result
