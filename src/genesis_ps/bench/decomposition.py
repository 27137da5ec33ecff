"""``genesis-ps bench decomposition``: WorFBench workflow generation through the HTDAG planner.

For every selected record and method the model is asked, through
:func:`genesis_ps.planners.planner.decompose` with the record's own WorFBench system turn and the
``Node:/Edge:`` style, for a workflow; the planner accepts our JSON and WorFBench's text form. The DAG
is scored against the gold workflow with f1_chain and f1_graph (:mod:`genesis_ps.bench.worfbench`),
plus the decomposition evaluator's quality score, tokens generated, the measured cost multiplier and
latency. When the planner had to fall back to its heuristic decomposition (the model's output was
unusable), the record scores 0 on the WorFBench metrics, as an unparseable prediction does in the paper.
Rows are appended to ``rows.jsonl`` as they finish; the report (JSON, Markdown, PNG) is written at the end.

``bon`` / ``self_consistency`` in ``--methods`` add compute-matched baselines
(:mod:`genesis_ps.bench.baselines`) for every power method listed: on each record, the planner's generation
is best-of-N (mean log-likelihood per token) or the majority workflow (the same parsed task list, compared
as normalised text; exact repeats are rare, and without one it is best-of-N) over N standard samples whose
tokens match the power method's measured tokens on that record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genesis_ps.bench.baselines import Pool, baseline_name
from genesis_ps.bench.methods import MethodSpec, check_capabilities, parse_methods, run_method
from genesis_ps.bench.worfbench import Record, Workflow, chain_scores, graph_scores, load_records, parse_workflow
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.generation import Generator
from genesis_ps.sampling.params import SamplerParams, check_temperature
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = [
    "DecompositionConfig",
    "dag_to_workflow",
    "default_data",
    "register",
    "run_decomposition",
    "score_prediction",
]


def default_data() -> Path | None:
    """``../shared/benchmarks/worfbench`` relative to the working directory, when present."""
    p = Path.cwd().parent / "shared" / "benchmarks" / "worfbench"
    return p if p.is_dir() else None


@dataclass
class DecompositionConfig:
    data: str
    domains: list[str] | None = None
    limit: int | None = 5
    methods: list[MethodSpec] = field(default_factory=lambda: parse_methods("single,power-mh"))
    params: SamplerParams = field(default_factory=lambda: SamplerParams(max_new_tokens=160))
    matcher: str = "embedding"
    match_threshold: float | None = None
    max_attempts: int = 1
    seed: int = 0
    out: str | None = None
    progress: bool = False
    command: str = ""
    baseline_temperature: float = 1.0
    """Temperature of the samples ``bon`` and ``self_consistency`` choose among."""


def dag_to_workflow(dag: Any) -> Workflow:
    """A planner :class:`TaskDAG` as a :class:`Workflow` (nodes in the planner's order)."""
    index = {t.id: i for i, t in enumerate(dag.tasks)}
    edges = tuple((index[d], index[t.id]) for t in dag.tasks for d in t.depends_on if d in index)
    return Workflow(nodes=tuple(t.description for t in dag.tasks), edges=edges)


def score_prediction(pred: Workflow | None, gold: Workflow, matcher: Any) -> dict[str, Any]:
    """f1_chain / f1_graph (with precision and recall) of ``pred`` against ``gold``; None scores 0."""
    if pred is None or not pred.nodes:
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {"chain": dict(zero), "graph": dict(zero), "matched": 0}
    from genesis_ps.bench.matching import match_nodes

    mapping = match_nodes(matcher.similarity(list(pred.nodes), list(gold.nodes)), matcher.threshold)
    return {
        "chain": chain_scores(pred, gold, mapping),
        "graph": graph_scores(pred, gold, mapping),
        "matched": len(mapping),
    }


def workflow_answer(text: str, request: str) -> tuple[str, ...] | None:
    """The parsed task list of ``text`` as normalised strings (the answer self-consistency votes on)."""
    from genesis_ps.planners.parse import parse_dag

    dag = parse_dag(text, request=request).dag
    if dag is None or not dag.tasks:
        return None
    return tuple(" ".join(t.description.lower().split()) for t in dag.tasks)


def _baseline_generator(model: TokenModel, rec: Record, kind: str, target: float, cfg: DecompositionConfig,
                        seed: int, pools: dict[Prompt, Pool]) -> Generator:  # fmt: skip
    """A generator answering with the ``kind`` baseline over the record's shared pool of samples."""
    from genesis_ps.generation import single_shot

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        pool = pools.get(prompt)
        if pool is None:

            async def draw(j: int) -> GenerationResult:
                return await single_shot(model, prompt, max_new_tokens=cfg.params.max_new_tokens,
                                         temperature=cfg.baseline_temperature,
                                         seed=(seed * 7919 + 1_000_003 * (j + 1)) % 2**31)  # fmt: skip

            pool = pools[prompt] = Pool(draw)
        pick = await pool.pick(kind, target, extract=lambda text: workflow_answer(text, rec.task))
        r = replace(pick.result, tokens_generated=pick.tokens_generated)
        r.extra = {**r.extra, "baseline": kind, "n": pick.n, "target_tokens": target, "votes": pick.votes}
        return r

    return gen


async def _one(
    model: TokenModel, rec: Record, spec: MethodSpec, cfg: DecompositionConfig, seed: int, matcher: Any,
    generator: Generator | None = None, name: str | None = None,
) -> dict[str, Any]:
    from genesis_ps.planners.planner import decompose

    params = cfg.params.with_(seed=seed)

    async def plain(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        return await run_method(model, prompt, spec, params or cfg.params.with_(seed=seed))

    gen = generator or plain

    t0 = time.perf_counter()
    d = await decompose(
        rec.task,
        generator=gen,
        params=params,
        method="single" if spec.baseline else spec.sampler,
        style="worfbench",
        instructions=rec.system or None,
        max_attempts=cfg.max_attempts,
    )
    pred = dag_to_workflow(d.dag) if d.fallback is None else None
    s = score_prediction(pred, rec.gold, matcher)
    last = d.generations[-1].text if d.generations else ""
    try:
        parse_workflow(last)
        strict = True
    except ValueError:
        strict = False
    return {
        "id": rec.id,
        "domain": rec.domain,
        "method": name or spec.name,
        "seed": seed,
        "parse_ok": d.fallback is None,
        "valid": pred is not None and pred.valid,
        "strict_worfbench_parse": strict,
        "form": next((a.get("form") for a in reversed(d.attempts) if "form" in a), None),
        "fallback": d.fallback,
        "generation_fallbacks": d.generation_fallbacks,
        "f1_chain": s["chain"]["f1"],
        "f1_graph": s["graph"]["f1"],
        "chain": s["chain"],
        "graph": s["graph"],
        "matched": s["matched"],
        "pred_nodes": len(pred.nodes) if pred else 0,
        "gold_nodes": len(rec.gold.nodes),
        # the evaluator scores unusable model output 0; the heuristic fallback DAG is not the model's work
        "quality": 0.0 if d.fallback else (None if d.quality is None else d.quality.value),
        "tokens_generated": d.tokens_generated,
        "tokens_returned": d.tokens_returned,
        "cost_multiplier": d.cost_multiplier,
        "latency_s": time.perf_counter() - t0,
        "acceptance_rate": next((g.acceptance_rate for g in d.generations if g.acceptance_rate is not None), None),
        "text": last,
        "baseline_n": d.generations[-1].extra.get("n") if d.generations else None,
    }


async def run_decomposition(cfg: DecompositionConfig, model: TokenModel) -> dict[str, Any]:
    """Run the benchmark on ``model``; write rows as they finish and the report at the end."""
    from genesis_ps.bench.decomposition_report import summarise, write_reports
    from genesis_ps.bench.matching import get_matcher
    from genesis_ps.bench.report import JsonlWriter, progress
    from genesis_ps.planners.planner import check_request

    check_capabilities(model, cfg.methods)
    loaded = load_records(cfg.data, cfg.domains, cfg.limit)
    records: list[Record] = []
    skipped = list(loaded.skipped)
    for r in loaded.records:
        try:
            check_request(r.task)
            records.append(r)
        except ConfigError as e:
            skipped.append({"id": r.id, "domain": r.domain, "reason": str(e)})
    if not records:
        raise ConfigError("domains", f"no usable records selected ({len(skipped)} skipped) from {cfg.data}")
    matcher, matcher_note = get_matcher(cfg.matcher, threshold=cfg.match_threshold)
    out_dir = Path(cfg.out) if cfg.out else None
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    regular = [m for m in cfg.methods if not m.baseline]
    kinds = [m.sampler for m in cfg.methods if m.baseline]
    power = [m.name for m in regular if m.power]
    if kinds and not power:
        raise ConfigError("methods", "bon / self_consistency are matched to power methods: list at least one")
    by_name = {m.name: m for m in cfg.methods}
    with (
        JsonlWriter(out_dir / "rows.jsonl" if out_dir else None) as sink,
        progress(len(records) * (len(regular) + len(power) * len(kinds)), "decomposition",
                 enabled=cfg.progress) as advance,
    ):  # fmt: skip
        for i, rec in enumerate(records):
            seed = cfg.seed * 100_003 + i
            tokens: dict[str, int] = {}
            jobs: list[tuple[MethodSpec, Generator | None, str]] = [(spec, None, spec.name) for spec in regular]
            pools: dict[Prompt, Pool] = {}
            k = 0
            while k < len(jobs):
                spec, gen, name = jobs[k]
                k += 1
                try:
                    row = await _one(model, rec, spec, cfg, seed, matcher, gen, name)
                except ConfigError:
                    raise
                except (GenesisError, TimeoutError, RuntimeError) as e:
                    err = {"id": rec.id, "domain": rec.domain, "method": name, "error": f"{type(e).__name__}: {e}"}
                    errors.append(err)
                    sink.write({**err, "kind": "error"})
                    advance(1, f"{name}: error")
                    continue
                rows.append(row)
                sink.write(row)
                advance(1, f"{name} f1_graph={row['f1_graph']:.2f}")
                if spec.power:
                    tokens[name] = row["tokens_generated"]
                if k == len(regular):  # every regular method done: queue the baselines matched to each
                    jobs += [
                        (by_name[kind], _baseline_generator(model, rec, kind, tokens[m], cfg, seed, pools),
                         baseline_name(kind, m))
                        for m in power if m in tokens for kind in kinds
                    ]  # fmt: skip
    names = [m.name for m in regular] + [baseline_name(kd, m) for m in power for kd in kinds]
    report = summarise(rows, names, errors=errors, skipped=skipped)
    report["config"] = {
        "data": str(cfg.data),
        "domains": cfg.domains,
        "limit_per_domain": cfg.limit,
        "methods": [m.name for m in cfg.methods],
        "alpha": cfg.params.alpha,
        "n_mcmc": cfg.params.n_mcmc,
        "block_size": cfg.params.block_size,
        "n_particles": cfg.params.n_particles,
        "max_new_tokens": cfg.params.max_new_tokens,
        "max_attempts": cfg.max_attempts,
        "seed": cfg.seed,
        "baseline_temperature": cfg.baseline_temperature if kinds else None,
        "proposal_temperature": cfg.params.tau,
        "matcher": matcher.name,
        "match_threshold": matcher.threshold,
        "matcher_note": matcher_note,
        "provider": model.provider,
        "model": model.model,
        "command": cfg.command,
    }
    if out_dir is not None:
        report["files"] = write_reports(report, out_dir)
    return report


def register(sub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = sub.add_parser("decomposition", help="WorFBench workflow generation: f1_chain / f1_graph per method")
    p.add_argument(
        "--data", default=None, help="WorFBench directory or JSON file (default ../shared/benchmarks/worfbench)"
    )
    p.add_argument("--domains", default=None, help="comma-separated domains (default: all in --data)")
    p.add_argument("--limit", type=int, default=5, help="records per domain (default 5)")
    p.add_argument("--methods", default="single,power-mh",
                   help="greedy,single,low-temp,power-mh,power-mh-entropy,power-smc,power-imh,power-tps and the "
                   "compute-matched baselines bon,self_consistency")
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
    add_common(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    data = args.data or default_data()
    if data is None:
        raise ConfigError("data", "no --data given and ../shared/benchmarks/worfbench does not exist here")
    params = SamplerParams(
        alpha=args.alpha,
        n_mcmc=args.n_mcmc,
        block_size=args.block_size,
        n_particles=args.particles,
        max_new_tokens=args.max_new_tokens,
    )
    cfg = DecompositionConfig(
        data=str(data),
        domains=[d.strip() for d in args.domains.split(",") if d.strip()] if args.domains else None,
        limit=args.limit,
        methods=parse_methods(args.methods),
        params=params,
        matcher=args.matcher,
        match_threshold=args.match_threshold,
        max_attempts=args.max_attempts,
        seed=args.seed,
        out=args.out,
        progress=not args.json,
        command="genesis-ps " + " ".join(sys.argv[1:]),
        baseline_temperature=check_temperature(args.baseline_temperature, "--baseline-temperature"),
    )
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError("limit", f"must be >= 1, got {cfg.limit}")
    load_records(cfg.data, cfg.domains, cfg.limit)  # bad --data/--domains/--limit fail before the model loads
    from genesis_ps.providers.registry import build_model

    model = build_model(args.provider, model=args.model, base_url=args.base_url)
    report = asyncio.run(run_decomposition(cfg, model))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
    else:
        from genesis_ps.bench.decomposition_report import markdown

        print(markdown(report))
    return 0
