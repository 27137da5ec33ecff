"""``genesis-ps bench reasoning``: SICA's iterative loop against one power-sampled pass and plain CoT.

``genesis-ps bench reasoning [--task arithmetic|math500] [--limit N] [--methods ...] [--out DIR]`` runs it
(:mod:`genesis_ps.bench.reasoning_run`); ``genesis-ps bench reasoning report DIR`` rebuilds DIR's
report.json, report.md and plots from its rows.jsonl (:mod:`genesis_ps.bench.reasoning_report`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from genesis_ps.bench.reasoning_data import SUBSETS, TASKS
from genesis_ps.bench.reasoning_run import DEFAULT_METHODS, METHODS, ReasoningConfig, build_items, parse_methods
from genesis_ps.errors import ConfigError
from genesis_ps.loops.sica_state import SicaConfig
from genesis_ps.sampling.params import SamplerParams, check_temperature

__all__ = ["register"]


def register(sub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = sub.add_parser("reasoning", help="SICA's iterative loop vs one power-sampled pass vs plain CoT: accuracy "
                       "and LLM calls per problem")  # fmt: skip
    p.add_argument("--task", default="arithmetic", choices=list(TASKS))
    p.add_argument("--limit", type=int, default=20, help="problems (default 20)")
    p.add_argument("--kind", default="add20", help="arithmetic kind: add20, add2, add12, sub2 (default add20)")
    p.add_argument("--shots", type=int, default=0, help="worked examples before each arithmetic question (default 0)")
    p.add_argument("--data", default=None, help="MATH500 JSON (default ../shared/benchmarks/math500/MATH500.json)")
    p.add_argument(
        "--subset",
        default="shortest",
        choices=list(SUBSETS),
        help="MATH500: the --limit shortest problems (default) or the first in file order",
    )
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated: {', '.join(METHODS)}")
    p.add_argument("--provider", default="embedded")
    p.add_argument("--model", default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--sampler", default="mh", choices=["mh", "smc", "imh", "tps"], help="the power pass's sampler")
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--n-mcmc", type=int, default=2, help="MH steps per block (default 2)")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=None, help="per call; default 32 (arithmetic) / 64 (math500)")
    p.add_argument("--temperature", type=float, default=0.0, help="plain generations (default 0: greedy)")
    p.add_argument("--baseline-temperature", type=float, default=1.0, help="bon / self_consistency samples")
    p.add_argument("--max-iterations", type=int, default=3, help="SICA iterative: answers at most (default 3)")
    p.add_argument("--power-max-iterations", type=int, default=2, help="SICA power: answers at most (default 2)")
    add_common(p)
    rsub = p.add_subparsers(dest="action", metavar="report")
    r = rsub.add_parser("report", help="rebuild report.json/report.md/plots in DIR from DIR/rows.jsonl")
    r.add_argument("dir")
    r.add_argument("--json", dest="report_json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_main)


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
    else:
        from genesis_ps.bench.reasoning_report import markdown

        print(markdown(report))


def config_from_args(args: argparse.Namespace) -> ReasoningConfig:
    """The run's configuration; every bad flag is a ConfigError naming it."""
    for flag in ("limit", "n_mcmc", "block_size", "particles"):
        v = getattr(args, flag)
        if v < 1:
            raise ConfigError(f"--{flag.replace('_', '-')}", f"must be >= 1, got {v}")
    check_temperature(args.temperature, "--temperature")
    check_temperature(args.baseline_temperature, "--baseline-temperature")
    arith = args.task == "arithmetic"
    params = SamplerParams(
        method=args.sampler,
        alpha=args.alpha,
        n_mcmc=args.n_mcmc,
        block_size=args.block_size,
        n_particles=args.particles,
        max_new_tokens=args.max_new_tokens or (32 if arith else 64),
    )
    return ReasoningConfig(
        task=args.task, limit=args.limit, kind=args.kind, shots=args.shots, data=args.data, subset=args.subset,
        methods=parse_methods(args.methods), params=params, temperature=args.temperature,
        sica=SicaConfig(max_iterations=args.max_iterations, power_max_iterations=args.power_max_iterations),
        baseline_temperature=args.baseline_temperature, seed=args.seed, out=args.out, progress=not args.json,
        command="genesis-ps " + " ".join(sys.argv[1:]),
    )  # fmt: skip


def _main(args: argparse.Namespace) -> int:
    if args.action == "report":
        from genesis_ps.bench.reasoning_report import regenerate

        _print(regenerate(args.dir), args.report_json)
        return 0
    cfg = config_from_args(args)
    items = build_items(cfg)  # bad data fails before the model loads
    from genesis_ps.bench.reasoning_run import run_reasoning
    from genesis_ps.providers.registry import build_model

    model = build_model(args.provider, model=args.model, base_url=args.base_url)
    _print(asyncio.run(run_reasoning(cfg, model, items)), args.json)
    return 0
