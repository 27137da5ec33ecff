"""``genesis-ps sample PROMPT``: power-sample (or single-shot) one text and print it with its record.

Defaults come from the environment (``POWER_SAMPLING_*``, see :class:`genesis_ps.settings.Settings`);
flags override them. Every value is validated before the model loads (exit code 2, the parameter named).
A provider without log-probs is served by :func:`genesis_ps.generation.generate`, whose single-shot
fallback is recorded in the result (``fallback``) rather than hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any

from genesis_ps.cli.checks import check_model_flags, check_temp
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import CUTS, METHODS, MOVES, RESAMPLERS, SELECTIONS, SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = ["register", "run"]

_PROVIDERS = ("embedded", "local", "openai", "openai-compatible", "gemini", "anthropic")


def register(sub: Any) -> None:
    p = sub.add_parser("sample", help="power-sample one text (MH, SMC, IMH) or sample it single-shot")
    p.add_argument("prompt", metavar="PROMPT", help="the user message (use --raw for raw text, no chat template)")
    p.add_argument("--method", choices=METHODS, default=None, help="mh | smc | imh | tps | single")
    p.add_argument("--alpha", type=float, default=None, help="power of the target p^alpha (> 0)")
    p.add_argument("--n-mcmc", type=int, default=None, help="MH steps per block (mh) or proposals (imh)")
    p.add_argument("--block-size", type=int, default=None, help="tokens per block (mh, smc)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="length limit of the generated text")
    p.add_argument("--particles", type=int, default=None, help="SMC particles")
    p.add_argument("--seed", type=int, default=None, help="random seed (drawn and recorded when absent)")
    p.add_argument("--temperature", type=float, default=None, help="temperature of method single (0 = greedy)")
    p.add_argument("--proposal-temperature", type=float, default=None, help="proposal τ (default max(1/alpha, 1/3))")
    p.add_argument("--cuts", choices=CUTS, default=None, help="MH cut positions: uniform | entropy (decision points)")
    p.add_argument("--tries", type=int, default=None, help="MH suffixes proposed per cut (multiple-try when > 1)")
    p.add_argument("--block-tries", type=int, default=None,
                   help="MH: continuations drawn for each new block, one kept by importance weight (1 = one draw)")
    p.add_argument("--change-at-cut", type=float, default=None, metavar="RHO",
                   help="MH: probability that a step redraws the token at its cut without the current one (exact; "
                        "local and toy models; 0 = off)")
    p.add_argument("--moves", choices=MOVES, default=None,
                   help="MH moves: plain | differ (every proposal differs from the current state) | decision "
                        "(decision-point MH: differ moves and changes before entropy jumps); exact; local and toy "
                        "models")
    p.add_argument("--adaptive", action="store_true", default=None, help="adaptive effort (MH steps, SMC rounds)")
    p.add_argument("--early-reject", action="store_true", default=None,
                   help="MH: stop generating a proposal once it is certainly rejected (exact; fewer tokens)")
    p.add_argument("--resampler", choices=RESAMPLERS, default=None, help="SMC resampling scheme")
    p.add_argument("--ramp-tokens", type=int, default=None, help="SMC: ramp alpha from 1 over this many tokens")
    p.add_argument("--selection", choices=SELECTIONS, default=None,
                   help="last | best_target | best_evaluator | consensus (majority answer; math answer extractor)")
    p.add_argument("--candidates", type=int, default=None, help="TPS: candidate tokens at a decision point")
    p.add_argument("--rollouts", type=int, default=None, help="TPS: rollouts per candidate")
    p.add_argument("--horizon", type=int, default=None, help="TPS: tokens per rollout")
    p.add_argument("--decision-entropy", type=float, default=None, help="TPS: entropy (nats) of a decision point")
    p.add_argument("--no-reuse-rollouts", dest="reuse_rollouts", action="store_false", default=None,
                   help="TPS: draw the tokens after a decision afresh instead of taking them from the chosen "
                        "candidate's rollout (one more model call per decision point)")
    p.add_argument("--provider", choices=_PROVIDERS, default=None, help="model provider (default: embedded)")
    p.add_argument("--model", default=None, help="model name, or a path for provider local")
    p.add_argument("--base-url", default=None, help="server URL for openai-compatible providers")
    p.add_argument("--raw", action="store_true", help="use PROMPT as raw text, without the chat template")
    p.add_argument("--json", action="store_true", help="print one JSON object (the result record)")
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> tuple[SamplerParams, float | None, str, str | None]:
    """Validated sampler parameters, the single-shot temperature, provider and model — before any loading."""
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    for arg, field in (
        ("method", "method"), ("alpha", "alpha"), ("n_mcmc", "n_mcmc"), ("block_size", "block_size"),
        ("max_new_tokens", "max_new_tokens"), ("particles", "n_particles"), ("seed", "seed"),
        ("proposal_temperature", "proposal_temperature"), ("cuts", "cuts"), ("tries", "n_tries"),
        ("block_tries", "block_tries"),
        ("adaptive", "adaptive"), ("resampler", "resampler"), ("ramp_tokens", "ramp_tokens"),
        ("selection", "selection"), ("candidates", "candidates"), ("rollouts", "rollouts"), ("horizon", "horizon"),
        ("decision_entropy", "decision_entropy"), ("early_reject", "early_reject"),
        ("change_at_cut", "change_at_cut"), ("moves", "moves"), ("reuse_rollouts", "reuse_rollouts"),
    ):
        value = getattr(args, arg)
        if value is not None:
            changes[field] = value
    temperature: float | None = None
    if args.temperature is not None:
        temperature = check_temp("--temperature", args.temperature)
        if args.temperature > 0:
            changes["temperature"] = args.temperature
    try:
        params = settings.sampler.with_(**changes)
    except ConfigError as e:
        flag = {"n_particles": "particles", "n_tries": "tries"}.get(e.param, e.param)
        raise ConfigError("--" + flag.replace("_", "-"), str(e).split(": ", 1)[-1]) from None
    if params.seed is None:
        params = params.with_(seed=secrets.randbits(31))
    provider = args.provider or settings.provider
    model = args.model or settings.model
    check_model_flags(provider, model, args.base_url)
    return params, temperature, provider, model


def run(args: argparse.Namespace) -> int:
    params, temperature, provider, model_name = _params(args)
    if not args.prompt.strip():
        raise ConfigError("PROMPT", "must not be empty")
    from genesis_ps.providers.registry import build_model

    t0 = time.perf_counter()
    model = build_model(provider, model=model_name, base_url=args.base_url)
    load_s = time.perf_counter() - t0
    prompt = Prompt.text(args.prompt) if args.raw else Prompt.user(args.prompt)
    result = asyncio.run(_sample(model, prompt, params, temperature, show_progress=not args.json))
    record = result.to_dict()
    record["load_s"] = round(load_s, 3)
    if args.json:
        print(json.dumps(record, default=str))
    elif not result.extra.get("unanswered"):
        _print_human(result, record)
    if result.extra.get("unanswered"):  # neither power sampling nor its fallback could answer
        print(f"genesis-ps: error: {str(result.extra.get('error', 'no answer')).removeprefix('unanswered: ')}",
              file=sys.stderr)  # fmt: skip
        return 2
    return 0


async def _sample(
    model: Any, prompt: Prompt, params: SamplerParams, temperature: float | None, *, show_progress: bool
) -> GenerationResult:
    from genesis_ps.generation import generate, single_shot

    if params.method == "single":
        t = params.temperature if temperature is None else temperature
        return await single_shot(model, prompt, max_new_tokens=params.max_new_tokens, temperature=t, seed=params.seed)
    kw: dict[str, Any] = {}
    if params.selection == "consensus":
        from genesis_ps.evaluators.math_answer import extract_answer

        kw["extract_answer"] = lambda text: extract_answer(text)[0]
    if not show_progress:
        return await generate(model, prompt, params, **kw)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"{params.method} α={params.alpha:g}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("sampling", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return await generate(model, prompt, params, progress=progress, **kw)


def _print_human(result: GenerationResult, record: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    out.print(result.text, markup=False)
    table = Table(title="result record", show_header=False)
    for key in ("method", "requested_method", "fallback", "provider", "model", "alpha", "tokens_generated",
                "tokens_returned", "cost_multiplier", "acceptance_rate", "resamples", "requests", "latency_s",
                "load_s", "logp_sum", "eos", "seed"):
        value = record.get(key)
        if isinstance(value, float):
            value = f"{value:.4g}"
        table.add_row(key, str(value))
    if result.extra.get("fallback_error"):
        table.add_row("fallback_error", str(result.extra["fallback_error"]))
    out.print(table)
