"""``genesis-ps bench quality``: does power sampling answer better than standard sampling at equal α?

Methods (at one α): ``greedy``, ``single`` (standard sampling, τ = 1), ``low-temp`` (τ = 1/α),
``power-mh``, ``power-smc`` (and ``power-imh`` on request). Tasks: ``arithmetic`` — few-shot integer
arithmetic from a seed (:mod:`genesis_ps.bench.arithmetic`), raw prompts, short answers, affordable on a
CPU — and ``math500`` (:mod:`genesis_ps.bench.math500`) for real models.

Every problem runs with every method under ``--seeds`` K seeds (greedy once: it is deterministic).
Reported per method: accuracy (seed 0) with a Wilson 95% interval, mean accuracy over seeds, pass@K,
distinct answers per problem, the mean log-likelihood per token under the base model
(``logp_sum / tokens_returned``), tokens generated, the measured cost multiplier and wall time; and paired
differences against ``single`` with bootstrap intervals and paired p-values. Rows go to ``rows.jsonl``
as they finish.

``bon`` and ``self_consistency`` in ``--methods`` add compute-matched baselines
(:mod:`genesis_ps.bench.baselines`): for every power method in the list, on every problem and seed,
best-of-N and majority vote over N standard samples whose tokens match that power method's measured
tokens there (``bon[power-mh]``, …), each compared with its power method pairwise; ``accuracy_vs_tokens.png``
is the Pareto plot of accuracy against measured tokens per item.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis_ps.bench.baselines import Pool, baseline_name
from genesis_ps.bench.methods import MethodSpec, check_capabilities, parse_methods, run_method
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.sampling.params import SamplerParams, check_temperature
from genesis_ps.sampling.protocol import Prompt, TokenModel

__all__ = ["Item", "QualityConfig", "build_items", "register", "run_quality"]

TASKS = ("arithmetic", "math500")


@dataclass(frozen=True)
class Item:
    """One problem: its prompt, reference answer and checker (text → (correct, extracted answer))."""

    id: str
    prompt: Prompt
    answer: str
    check: Callable[[str], tuple[bool, str | None]]


@dataclass
class QualityConfig:
    task: str = "arithmetic"
    n: int = 50
    kind: str = "add20"
    shots: int = 3
    data: str | None = None
    methods: list[MethodSpec] = field(
        default_factory=lambda: parse_methods("greedy,single,low-temp,power-mh,power-smc")
    )
    params: SamplerParams = field(
        default_factory=lambda: SamplerParams(max_new_tokens=6, block_size=3, n_mcmc=3, n_particles=4)
    )
    seeds: int = 1
    seed: int = 0
    out: str | None = None
    progress: bool = False
    command: str = ""
    baseline_temperature: float = 1.0
    """Temperature of the samples ``bon`` and ``self_consistency`` choose among."""


def build_items(cfg: QualityConfig) -> tuple[list[Item], list[str]]:
    """The problems of ``cfg.task`` and the reasons for any skipped records."""
    if cfg.task not in TASKS:
        raise ConfigError("task", f"unknown task {cfg.task!r}; choose one of {', '.join(TASKS)}")
    if isinstance(cfg.seeds, bool) or not isinstance(cfg.seeds, int) or cfg.seeds < 1:
        raise ConfigError("seeds", f"must be an integer >= 1, got {cfg.seeds!r}")
    if cfg.task == "arithmetic":
        from genesis_ps.bench.arithmetic import extract_integer, make_problems

        def checker(ans: str) -> Callable[[str], tuple[bool, str | None]]:
            return lambda text: ((x := extract_integer(text)) == ans, x)

        probs = make_problems(cfg.n, seed=cfg.seed, kind=cfg.kind, shots=cfg.shots)
        return [Item(p.id, Prompt.text(p.prompt), p.answer, checker(p.answer)) for p in probs], []
    from genesis_ps.bench.math500 import check_answer, default_math500, load_math500, math_prompt

    path = cfg.data or default_math500()
    if path is None:
        raise ConfigError("data", "no --data given and ../shared/benchmarks/math500/MATH500.json does not exist here")
    if isinstance(cfg.n, bool) or not isinstance(cfg.n, int) or cfg.n < 1:
        raise ConfigError("n", f"must be an integer >= 1, got {cfg.n!r}")
    mprobs, skipped = load_math500(path, n=cfg.n)
    if not mprobs:
        raise ConfigError("data", f"no usable MATH500 problems in {path} ({len(skipped)} skipped)")

    def mcheck(ref: str) -> Callable[[str], tuple[bool, str | None]]:
        return lambda text: check_answer(text, ref)

    return [Item(p.id, math_prompt(p), p.answer, mcheck(p.answer)) for p in mprobs], skipped


def _row(item: Item, name: str, k: int, seed: int | None, r: Any, wall: float) -> dict[str, Any]:
    ok, extracted = item.check(r.text)
    return {
        "id": item.id,
        "method": name,
        "seed_index": k,
        "seed": seed,
        "correct": bool(ok),
        "extracted": extracted,
        "answer": item.answer,
        "text": r.text,
        "logp_sum": r.logp_sum,
        "tokens_returned": r.tokens_returned,
        "tokens_generated": r.tokens_generated,
        "loglik_per_token": (r.logp_sum / r.tokens_returned) if r.logp_sum is not None and r.tokens_returned else None,
        "wall_s": wall,
        "fallback": r.fallback,
        "method_ran": r.method,
        "acceptance_rate": r.acceptance_rate,
    }


async def _one(model: TokenModel, item: Item, spec: MethodSpec, params: SamplerParams, k: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = await run_method(model, item.prompt, spec, params)
    return _row(item, spec.name, k, params.seed, r, time.perf_counter() - t0)


def _pool(model: TokenModel, item: Item, params: SamplerParams, temperature: float) -> Pool:
    from genesis_ps.generation import single_shot

    async def draw(j: int) -> Any:
        seed = (int(params.seed or 0) * 7919 + 1_000_003 * (j + 1)) % 2**31
        return await single_shot(model, item.prompt, max_new_tokens=params.max_new_tokens, temperature=temperature,
                                 seed=seed)  # fmt: skip

    return Pool(draw)


async def _baselines(
    model: TokenModel, item: Item, kinds: list[str], targets: dict[str, float], params: SamplerParams, k: int,
    temperature: float,
) -> list[dict[str, Any]]:
    """One row per (baseline kind, power method) for this item and seed, from one shared pool."""
    pool = _pool(model, item, params, temperature)
    out = []
    for m, target in targets.items():
        for kind in kinds:
            pick = await pool.pick(kind, target, extract=lambda text: item.check(text)[1])
            used = pool.samples[: pick.n]
            row = _row(item, baseline_name(kind, m), k, params.seed, pick.result, sum(r.latency_s for r in used))
            row |= {"tokens_generated": pick.tokens_generated, "baseline": kind, "matched_to": m, "n": pick.n,
                    "target_tokens": target, "votes": pick.votes}  # fmt: skip
            out.append(row)
    return out


async def run_quality(
    cfg: QualityConfig, model: TokenModel, prepared: tuple[list[Item], list[str]] | None = None
) -> dict[str, Any]:
    """Run the benchmark on ``model``; rows are written as they finish, the report at the end."""
    from genesis_ps.bench.quality_report import summarise, write_reports
    from genesis_ps.bench.report import JsonlWriter, progress

    check_capabilities(model, cfg.methods)
    items, skipped = prepared if prepared is not None else build_items(cfg)
    out_dir = Path(cfg.out) if cfg.out else None
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    regular = [m for m in cfg.methods if not m.baseline]
    kinds = [m.sampler for m in cfg.methods if m.baseline]
    power = [m.name for m in regular if m.power]
    if kinds and not power:
        raise ConfigError("methods", "bon / self_consistency are matched to power methods: list at least one")
    runs = [(spec, k) for spec in regular for k in range(1 if spec.name == "greedy" else cfg.seeds)]
    total = len(items) * (len(runs) + cfg.seeds * len(power) * len(kinds))
    with (
        JsonlWriter(out_dir / "rows.jsonl" if out_dir else None) as sink,
        progress(total, f"quality ({cfg.task})", enabled=cfg.progress) as advance,
    ):
        for i, item in enumerate(items):
            tokens: dict[tuple[str, int], float] = {}
            for spec, k in runs:
                params = cfg.params.with_(seed=(cfg.seed * 1_000_003 + i) * 101 + k)
                try:
                    row = await _one(model, item, spec, params, k)
                except ConfigError:
                    raise
                except (GenesisError, TimeoutError, RuntimeError) as e:
                    err = {"id": item.id, "method": spec.name, "seed_index": k, "error": f"{type(e).__name__}: {e}"}
                    errors.append(err)
                    sink.write({**err, "kind": "error"})
                    advance(1, f"{spec.name}: error")
                    continue
                rows.append(row)
                sink.write(row)
                tokens[(spec.name, k)] = row["tokens_generated"]
                advance(1, f"{spec.name}: {'✓' if row['correct'] else '✗'}")
            for k in range(cfg.seeds if kinds else 0):
                targets = {m: tokens[(m, k)] for m in power if (m, k) in tokens}
                params = cfg.params.with_(seed=(cfg.seed * 1_000_003 + i) * 101 + k)
                for row in await _baselines(model, item, kinds, targets, params, k, cfg.baseline_temperature):
                    rows.append(row)
                    sink.write(row)
                    advance(1, f"{row['method']}: {'✓' if row['correct'] else '✗'}")
    names = [m.name for m in regular] + [baseline_name(kd, m) for m in power for kd in kinds]
    report = summarise(rows, names, n_items=len(items), seeds=cfg.seeds, errors=errors)
    report["skipped_records"] = skipped
    report["config"] = {
        "task": cfg.task,
        "n": len(items),
        "kind": cfg.kind if cfg.task == "arithmetic" else None,
        "shots": cfg.shots if cfg.task == "arithmetic" else None,
        "methods": [m.name for m in cfg.methods],
        "alpha": cfg.params.alpha,
        "n_mcmc": cfg.params.n_mcmc,
        "block_size": cfg.params.block_size,
        "n_particles": cfg.params.n_particles,
        "max_new_tokens": cfg.params.max_new_tokens,
        "seeds": cfg.seeds,
        "seed": cfg.seed,
        "baseline_temperature": cfg.baseline_temperature if kinds else None,
        "proposal_temperature": cfg.params.tau,
        "provider": model.provider,
        "model": model.model,
        "command": cfg.command,
    }
    if out_dir is not None:
        report["files"] = write_reports(report, out_dir)
    return report


def register(sub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = sub.add_parser("quality", help="power sampling vs greedy / standard / low-temperature on a reasoning task")
    p.add_argument("--task", default="arithmetic", choices=list(TASKS))
    p.add_argument("--n", type=int, default=50, help="problems (default 50)")
    p.add_argument("--kind", default="add20", help="arithmetic kind: add20, add2, add12, sub2 (default add20)")
    p.add_argument("--shots", type=int, default=3, help="worked examples in each arithmetic prompt (default 3)")
    p.add_argument("--data", default=None, help="MATH500 JSON (default ../shared/benchmarks/math500/MATH500.json)")
    p.add_argument("--methods", default="greedy,single,low-temp,power-mh,power-smc",
                   help="greedy,single,low-temp,power-mh,power-mh-entropy,power-smc,power-imh,power-tps, and the "
                   "compute-matched baselines bon,self_consistency")
    p.add_argument("--baseline-temperature", type=float, default=1.0, help="temperature of bon / self_consistency")
    p.add_argument("--provider", default="embedded")
    p.add_argument("--model", default=None)
    p.add_argument("--base-url", default=None)
    p.add_argument("--alpha", type=float, default=4.0)
    p.add_argument("--seeds", type=int, default=1, help="samples per problem and method, for pass@k and diversity")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default 6 (arithmetic) / 1024 (math500)")
    p.add_argument("--n-mcmc", type=int, default=3)
    p.add_argument("--block-size", type=int, default=None, help="default 3 (arithmetic) / 64 (math500)")
    p.add_argument("--particles", type=int, default=4)
    add_common(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    arith = args.task == "arithmetic"
    params = SamplerParams(
        alpha=args.alpha,
        n_mcmc=args.n_mcmc,
        n_particles=args.particles,
        max_new_tokens=args.max_new_tokens or (6 if arith else 1024),
        block_size=args.block_size or (3 if arith else 64),
    )
    cfg = QualityConfig(
        task=args.task,
        n=args.n,
        kind=args.kind,
        shots=args.shots,
        data=args.data,
        methods=parse_methods(args.methods),
        params=params,
        seeds=args.seeds,
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        command="genesis-ps " + " ".join(sys.argv[1:]),
        baseline_temperature=check_temperature(args.baseline_temperature, "--baseline-temperature"),
    )
    prepared = build_items(cfg)  # before the model loads: bad task options fail first
    from genesis_ps.providers.registry import build_model

    model = build_model(args.provider, model=args.model, base_url=args.base_url)
    report = asyncio.run(run_quality(cfg, model, prepared))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
    else:
        from genesis_ps.bench.quality_report import markdown

        print(markdown(report))
    return 0
