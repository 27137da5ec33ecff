"""``genesis-ps decompose``: print the task DAG of a request (a tree, or ``--json``). The whole graph
runs with ``genesis-ps run`` (:mod:`genesis_ps.cli.run`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from genesis_ps.cli import common
from genesis_ps.cli.common import add_model_args, plan_style
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import GenerationResult, Prompt, SamplerParams

__all__ = ["cmd_decompose", "register"]


def register(sub: Any) -> None:
    d = sub.add_parser("decompose", help="decompose a request into a task DAG")
    d.add_argument("request", help="what to decompose")
    d.add_argument(
        "--method",
        default=None,
        choices=["single", "mh", "smc", "imh"],
        help="generation method (default: the htdag layer's flags and parameters)",
    )
    d.add_argument(
        "--style",
        default="auto",
        choices=["auto", "json", "worfbench"],
        help="answer format asked for (auto: WorFBench Node/Edge text for the embedded 135M model, which "
        "never wrote valid JSON in our runs; JSON otherwise)",
    )
    add_model_args(d)
    d.set_defaults(func=cmd_decompose)




# ---- decompose ------------------------------------------------------------------------------------------
def cmd_decompose(args: argparse.Namespace) -> int:
    from genesis_ps.graph.generation import GenerationPair
    from genesis_ps.graph.rollout import request_id_for
    from genesis_ps.planners import check_request, decompose
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    common.check_args(args, settings)
    request = check_request(args.request)
    model = common.load_model(args, settings)
    pair = GenerationPair(model, settings=settings)
    rid = request_id_for(request)
    explicit = args.method is not None

    tilt: dict[str, Any] = {}
    if args.plan_lam:
        from genesis_ps.evaluators.base import as_reward
        from genesis_ps.planners.quality import DecompositionEvaluator

        if not args.plan_lam > 0:
            raise ConfigError("--plan-lam", f"must be > 0, got {args.plan_lam!r}")
        tilt = {"reward": as_reward(DecompositionEvaluator(), {"request": request}), "lam": args.plan_lam}

    plan_params = settings.layer("htdag").params.with_(max_new_tokens=args.plan_max_new_tokens,
                                                       temperature=args.temperature)  # fmt: skip

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        mode = (True if explicit else None) if power else False
        return await pair(prompt, layer="htdag", params=params or plan_params, power=mode, request_id=rid,
                          sampler_kwargs=tilt)  # fmt: skip

    d = asyncio.run(
        decompose(
            request,
            generator=gen,
            params=plan_params,
            method=args.method,
            power=True,
            max_depth=args.max_depth,
            style=plan_style(args, settings),
        )
    )
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, default=str))
        return 0
    print(d.dag.render_tree())
    q = "n/a" if d.quality is None or d.quality.value is None else f"{d.quality.value:.2f}"
    print(
        f"\nmethod: {d.method} requested, {'/'.join(sorted({g.method for g in d.generations})) or 'none'} used  "
        f"plan fallback: {d.fallback or 'none'}  quality: {q}  "
        f"cost multiplier: {d.cost_multiplier:.2f} ({d.tokens_generated} tokens generated)"
    )
    if d.generation_fallbacks:
        print(f"generation fallbacks: {', '.join(d.generation_fallbacks)}")
    return 0

