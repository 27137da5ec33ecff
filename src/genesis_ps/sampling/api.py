"""The sampler's two entry points over a :class:`~genesis_ps.sampling.TokenModel`: :func:`run_power_sample`
and :func:`run_single_shot`. Pure: no spans, metrics or fallback policy (:mod:`genesis_ps.generation`
wraps them in those)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from genesis_ps.errors import (
    BudgetExceededError,
    ConfigError,
    LogprobsUnsupportedError,
    PromptTooLongError,
)
from genesis_ps.sampling.params import Budget, SamplerParams, check_int, check_seed, check_temperature
from genesis_ps.sampling.protocol import Prompt, TokenModel, as_prompt
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = [
    "Progress", "PromptLike", "check_method_options", "check_prompt_fits", "run_power_sample", "run_single_shot",
]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a sampler works (blocks for mh/smc, proposals for imh)."""

PromptLike = str | Prompt | Sequence[Mapping[str, str]]


def check_prompt_fits(model: TokenModel, prompt: Prompt, max_new_tokens: int) -> None:
    """Before any model work: :class:`ConfigError` for a prompt that encodes to no token at all (nothing to
    condition on), :class:`PromptTooLongError` when prompt + new tokens exceed the context."""
    ctx = model.capabilities.context_length
    n = model.prompt_length(prompt)
    if n == 0:
        raise ConfigError("prompt", "encodes to zero tokens: give the model some text to condition on")
    if ctx is None:
        return
    if n is not None and n + max_new_tokens > ctx:
        raise PromptTooLongError(
            "prompt",
            f"{n} prompt tokens + max_new_tokens={max_new_tokens} exceed the model's context of {ctx} tokens",
        )


async def run_power_sample(
    model: TokenModel,
    prompt: PromptLike,
    p: SamplerParams,
    *,
    reward: Reward | None,
    lam: float,
    evaluator: Reward | None,
    budget: Budget | None,
    progress: Progress | None,
    extract_answer: Callable[[str], str | None] | None = None,
) -> GenerationResult:
    """Sample from p(x)^α (optionally tilted by ``exp(lam·reward(x))``) with ``p.method``.

    ``mh`` on a model that cannot continue a prefix runs whole-sequence independence MH (``imh``);
    ``smc`` on such a model runs one block of whole sequences (importance resampling). The returned
    record's ``method`` says what actually ran. Raises :class:`LogprobsUnsupportedError` when the model
    has no log-probs, :class:`ConfigError` on invalid parameters — both before any model call. No spans,
    metrics or fallbacks here: :func:`genesis_ps.power_sample` adds them.
    """
    pr = as_prompt(prompt)
    caps = model.capabilities
    if p.method == "single":
        return await run_single_shot(model, pr, max_new_tokens=p.max_new_tokens, temperature=p.temperature, seed=p.seed)
    if caps.logprobs == "none":
        raise LogprobsUnsupportedError(
            f"{model.provider}/{model.model} returns no log-probabilities; power sampling needs them"
        )
    if p.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    if reward is not None and not (isinstance(lam, (int, float)) and lam > 0):
        raise ConfigError("lam", f"a reward was given but lam = {lam!r}: it would be ignored; pass lam > 0 to tilt "
                                 "the target by exp(lam * reward), or no reward")  # fmt: skip
    target = Target(alpha=p.alpha, reward=reward, lam=lam)
    check_method_options(model, p, target, extract_answer)
    check_prompt_fits(model, pr, p.max_new_tokens)
    seed = p.seed if p.seed is not None else secrets.randbits(63)
    rng = np.random.default_rng(seed)
    method = p.method
    if method == "mh" and not caps.prefix_continuation:
        method = "imh"
    kwargs: dict[str, Any] = dict(target=target, rng=rng, budget=budget, evaluator=evaluator, progress=progress,
                                  extract_answer=extract_answer)  # fmt: skip
    t0 = time.perf_counter()
    if method == "mh":
        from genesis_ps.sampling.mh import run_mh

        result = await run_mh(model, pr, p, **kwargs)
    elif method == "smc":
        from genesis_ps.sampling.smc import run_smc

        if not caps.prefix_continuation:
            p = p.with_(block_size=p.max_new_tokens)
        result = await run_smc(model, pr, p, **kwargs)
    elif method == "tps":
        from genesis_ps.sampling.tps import run_tps

        result = await run_tps(model, pr, p, **kwargs)
    else:
        from genesis_ps.sampling.imh import run_imh

        result = await run_imh(model, pr, p, **kwargs)
    result.latency_s = time.perf_counter() - t0
    result.seed = seed
    result.requested_method = p.method
    if result.budget_exhausted and result.tokens_returned == 0:
        raise BudgetExceededError(
            f"the budget (max_tokens={budget.max_tokens if budget else None}, max_requests="
            f"{budget.max_requests if budget else None}) ran out before a single token was sampled; raise it "
            f"or lower block_size ({p.block_size}) / n_particles ({p.n_particles})"
        )
    truncation = _truncation(model)
    if truncation:
        result.extra["truncated_target"] = (
            f"{truncation} truncates the proposal, so sequences holding a token outside the truncated support "
            "are never proposed: the chain targets p^alpha restricted to the truncated support, renormalised"
        )
    return result


def check_method_options(
    model: TokenModel, p: SamplerParams, target: Target, extract_answer: Callable[[str], str | None] | None
) -> None:
    """The options that depend on the model or on a callable, checked before any model work."""
    caps = model.capabilities
    if p.cuts == "entropy" and p.method in ("mh", "imh"):
        if caps.entropy == "none":
            raise ConfigError(
                "cuts", f"{model.provider}/{model.model} returns no top-k log-probabilities, so there is no "
                "next-token entropy to cut by; use cuts='uniform'",
            )
        if not caps.prefix_continuation:
            raise ConfigError("cuts", f"{model.provider}/{model.model} cannot continue a prefix (imh has no cuts)")
    if p.method == "mh":
        from genesis_ps.sampling.mh import check_mh_model

        check_mh_model(model, p)  # change_at_cut, moves: the same check mh_chains makes
    if p.selection == "consensus":
        if extract_answer is None:
            raise ConfigError("answer_extractor", "selection='consensus' needs an answer extractor (extract_answer=)")
        if p.method == "tps":
            raise ConfigError("selection", "consensus needs several samples; tps draws one")
    if p.method == "tps":
        from genesis_ps.sampling.tps import check_tps

        check_tps(model, p, target)


def _truncation(model: TokenModel) -> str:
    """``top_k=…, top_p=…`` when the model truncates its proposal (a local model's ``top_k`` / ``top_p``)."""
    k, p = getattr(model, "top_k", None), getattr(model, "top_p", None)
    parts = [f"top_k={k}"] if isinstance(k, int) and not isinstance(k, bool) else []
    if isinstance(p, (int, float)) and not isinstance(p, bool) and p < 1.0:
        parts.append(f"top_p={p}")
    return ", ".join(parts)


async def run_single_shot(
    model: TokenModel,
    prompt: PromptLike,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    seed: int | None = None,
) -> GenerationResult:
    """One plain sample at ``temperature`` (0 = greedy where the provider supports it), validated first."""
    check_int("max_new_tokens", max_new_tokens, 1)
    check_seed(seed)
    check_temperature(temperature)
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


