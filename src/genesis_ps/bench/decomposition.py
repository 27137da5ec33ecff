"""``genesis-ps bench decomposition``: WorFBench workflow generation through the HTDAG planner.

The run is :mod:`genesis_ps.bench.decomposition_run` (re-exported here), the report
:mod:`genesis_ps.bench.decomposition_report`. ``--regenerate DIR`` rewrites DIR's report files from its
``rows.jsonl`` alone, loading no model. Every flag is checked, and the data files' shape too, before
any model loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from genesis_ps.bench.decomposition_run import DecompositionConfig, check_tilt_lambda, default_data, run_decomposition
from genesis_ps.bench.decomposition_score import dag_to_workflow, score_prediction
from genesis_ps.bench.methods import parse_methods
from genesis_ps.bench.worfbench_load import PICKS, load_records, parse_domains
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams, check_temperature

__all__ = [
    "DecompositionConfig",
    "check_tilt_lambda",
    "dag_to_workflow",
    "default_data",
    "register",
    "run_decomposition",
    "score_prediction",
]

_METHODS_HELP = (
    "greedy,single,low-temp,power-mh,power-mh-entropy,power-smc,power-imh,power-tps, the plan-quality tilted "
    "power-mh-tilt,power-smc-tilt, and the compute-matched baselines bon,self_consistency"
)


def register(sub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = sub.add_parser("decomposition", help="WorFBench workflow generation: f1_chain / f1_graph per method")
    p.add_argument(
        "--data", default=None, help="WorFBench directory or JSON file (default ../shared/benchmarks/worfbench)"
    )
    p.add_argument("--domains", default=None, help="comma-separated domains (default: every <domain>.json in --data)")
    p.add_argument("--limit-per-domain", "--limit", dest="limit", type=int, default=5,
                   help="usable records per domain (default 5)")  # fmt: skip
    p.add_argument("--pick", choices=PICKS, default="first",
                   help="which records per domain: the first N in file order (default) or the N shortest tasks")
    p.add_argument("--methods", default="single,power-mh", help=_METHODS_HELP)
    p.add_argument("--tilt-lambda", type=float, default=5.0,
                   help="λ > 0 of the tilted methods' target p^alpha * exp(λ * plan quality) (default 5)")
    p.add_argument("--baseline-temperature", type=float, default=1.0, help="temperature of bon / self_consistency")
    p.add_argument("--provider", default="embedded")
    p.add_argument("--model", default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--n-mcmc", type=int, default=2, help="MH steps per block (default 2, to fit CPU runs)")
    p.add_argument("--block-size", type=int, default=48)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--max-attempts", type=int, default=1, help="planner attempts per record (paper: 1)")
    p.add_argument("--matcher", default="embedding", choices=["embedding", "lexical"])
    p.add_argument("--match-threshold", type=float, default=None, help="default 0.6 (embedding) / 0.5 (lexical)")
    p.add_argument("--regenerate", default=None, metavar="DIR",
                   help="rewrite DIR's report.json / report.md / plots from DIR/rows.jsonl (no model is loaded)")
    add_common(p)
    p.set_defaults(func=_main)


def _config(args: argparse.Namespace) -> DecompositionConfig:
    data = args.data or default_data()
    if data is None:
        raise ConfigError("data", "no --data given and ../shared/benchmarks/worfbench does not exist here")
    methods = parse_methods(args.methods, tilt=True)
    params = SamplerParams(alpha=args.alpha, n_mcmc=args.n_mcmc, block_size=args.block_size,
                           n_particles=args.particles, max_new_tokens=args.max_new_tokens)  # fmt: skip
    cfg = DecompositionConfig(
        data=str(data),
        domains=parse_domains(args.domains, data) if args.domains is not None else None,
        limit=args.limit,
        pick=args.pick,
        methods=methods,
        params=params,
        matcher=args.matcher,
        match_threshold=args.match_threshold,
        max_attempts=args.max_attempts,
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        command="genesis-ps " + " ".join(sys.argv[1:]),
        baseline_temperature=check_temperature(args.baseline_temperature, "--baseline-temperature"),
        tilt_lambda=check_tilt_lambda(args.tilt_lambda, "--tilt-lambda"),
    )
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError("limit-per-domain", f"must be >= 1, got {cfg.limit}")
    load_records(cfg.data, cfg.domains, cfg.limit, cfg.pick)  # bad data, domains or limit: before the model
    return cfg


def _main(args: argparse.Namespace) -> int:
    from genesis_ps.bench.decomposition_report import markdown

    if args.regenerate:
        from pathlib import Path

        from genesis_ps.bench.decomposition_report import report_from_file, write_reports

        report = report_from_file(Path(args.regenerate) / "rows.jsonl")
        report["files"] = write_reports(report, args.out or args.regenerate)
    else:
        cfg = _config(args)
        from genesis_ps.providers.registry import build_model

        model = build_model(args.provider, model=args.model, base_url=args.base_url)
        report = asyncio.run(run_decomposition(cfg, model))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
    else:
        print(markdown(report))
    return 0
