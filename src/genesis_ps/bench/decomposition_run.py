"""The decomposition benchmark's run: WorFBench workflow generation through the HTDAG planner
(the ``genesis-ps bench decomposition`` command is :mod:`genesis_ps.bench.decomposition`).

For every selected record (``--domains``, ``--limit-per-domain``, ``--pick``:
:mod:`genesis_ps.bench.worfbench_load`) and method the model is asked, through
:func:`genesis_ps.planners.planner.decompose` with the record's own WorFBench system turn and the
``Node:/Edge:`` style, for a workflow; the planner accepts our JSON and WorFBench's text form. The DAG
is scored against the gold workflow with f1_chain and f1_graph (:mod:`genesis_ps.bench.worfbench`),
plus the decomposition evaluator's quality score, tokens generated, the measured cost multiplier and
wall time. When the planner had to fall back to its heuristic decomposition (the model's output was
unusable), the record scores 0 on the WorFBench metrics, as an unparseable prediction does in the paper.

``power-mh-tilt`` / ``power-smc-tilt`` aim the sampler at p^α·exp(λ·q), q the decomposition quality
of the (partial) plan text (:class:`~genesis_ps.planners.quality.DecompositionEvaluator`), λ =
``tilt_lambda`` > 0; each is reported as a method of its own and compared with its untilted sampler.
``bon`` / ``self_consistency`` add compute-matched baselines (:mod:`genesis_ps.bench.baselines`) for every
power method listed, tilted ones included: on each record, best-of-N (mean log-likelihood per token) or
the majority workflow (the same parsed task list, as normalised text; without a repeat it is best-of-N)
over N standard samples whose tokens match the power method's measured tokens on that record.
Methods the provider cannot run (power methods without log-probs) are skipped with the reason in the
report. ``rows.jsonl`` starts with a header line (configuration, machine, skipped records and methods),
then one line per row as it finishes, then a footer; the report is a function of that file alone
(:func:`genesis_ps.bench.decomposition_report.report_from_rows`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genesis_ps.bench.baselines import Pool, baseline_name
from genesis_ps.bench.decomposition_score import dag_to_workflow, score_prediction, workflow_answer
from genesis_ps.bench.methods import MethodSpec, parse_methods, run_method, split_by_capabilities
from genesis_ps.bench.worfbench import parse_workflow
from genesis_ps.bench.worfbench_load import Record, load_records
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.generation import Generator
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["DecompositionConfig", "check_tilt_lambda", "default_data", "run_decomposition"]


def default_data() -> Path | None:
    """``../shared/benchmarks/worfbench`` relative to the working directory, when present."""
    p = Path.cwd().parent / "shared" / "benchmarks" / "worfbench"
    return p if p.is_dir() else None


def check_tilt_lambda(value: object, name: str = "tilt_lambda") -> float:
    """λ of the plan-quality tilt: a finite number > 0 (λ = 0 is the untilted method); ConfigError naming
    ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(name, f"must be a finite number > 0 (the untilted sampler is λ = 0), got {value!r}")
    return float(value)


@dataclass
class DecompositionConfig:
    data: str
    domains: list[str] | None = None
    limit: int | None = 5
    """Records per domain."""
    pick: str = "first"
    """How the per-domain subset is chosen: ``first`` (file order) or ``shortest`` (shortest tasks)."""
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
    tilt_lambda: float = 5.0
    """λ of the tilted methods' target p^α·exp(λ·q)."""


def _baseline_generator(model: TokenModel, rec: Record, kind: str, target: float, cfg: DecompositionConfig,
                        seed: int, pools: dict[Prompt, Pool]) -> Generator:  # fmt: skip
    """A generator answering with the ``kind`` baseline over the record's shared pool of samples. Its
    ``latency_s`` is the time the N samples it used took to draw (the pool is shared, so the wall time
    of the call would credit one baseline with the other's draws)."""
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
        spent = sum(s.latency_s for s in pool.samples[: pick.n])
        r = replace(pick.result, tokens_generated=pick.tokens_generated, latency_s=spent)
        r.extra = {**r.extra, "baseline": kind, "n": pick.n, "target_tokens": target, "votes": pick.votes}
        return r

    return gen


async def _one(model: TokenModel, rec: Record, spec: MethodSpec, cfg: DecompositionConfig, seed: int, matcher: Any,
               generator: Generator | None = None, name: str | None = None) -> dict[str, Any]:  # fmt: skip
    from genesis_ps.planners.planner import decompose

    tilt: dict[str, Any] = {}
    if spec.tilt:
        from genesis_ps.evaluators.base import as_reward
        from genesis_ps.planners.quality import DecompositionEvaluator

        tilt = {"reward": as_reward(DecompositionEvaluator(), {"request": rec.task}), "lam": cfg.tilt_lambda}

    async def plain(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        return await run_method(model, prompt, spec, params or cfg.params.with_(seed=seed), **tilt)

    t0 = time.perf_counter()
    d = await decompose(rec.task, generator=generator or plain, params=cfg.params.with_(seed=seed),
                        method="single" if spec.baseline else spec.sampler, style="worfbench",
                        instructions=rec.system or None, max_attempts=cfg.max_attempts)  # fmt: skip
    wall = time.perf_counter() - t0
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
        "latency_s": sum(g.latency_s for g in d.generations) if spec.baseline else wall,
        "acceptance_rate": next((g.acceptance_rate for g in d.generations if g.acceptance_rate is not None), None),
        "text": last,
        "baseline_n": d.generations[-1].extra.get("n") if d.generations else None,
    }


def _header(cfg: DecompositionConfig, model: TokenModel, matcher: Any, note: str | None, names: list[str],
            loaded: Any, skipped_methods: list[dict[str, str]]) -> dict[str, Any]:  # fmt: skip
    from genesis_ps.bench.report import machine_info, now_utc

    tilted = any(m.tilt for m in cfg.methods)
    config = {
        "data": str(cfg.data), "domains": sorted({r.domain for r in loaded.records}), "limit_per_domain": cfg.limit,
        "pick": cfg.pick, "records_available": loaded.available, "methods": [m.name for m in cfg.methods],
        "alpha": cfg.params.alpha, "n_mcmc": cfg.params.n_mcmc, "block_size": cfg.params.block_size,
        "n_particles": cfg.params.n_particles, "max_new_tokens": cfg.params.max_new_tokens,
        "max_attempts": cfg.max_attempts, "seed": cfg.seed,
        "baseline_temperature": cfg.baseline_temperature if any(m.baseline for m in cfg.methods) else None,
        "tilt_lambda": cfg.tilt_lambda if tilted else None, "proposal_temperature": cfg.params.tau,
        "matcher": matcher.name, "match_threshold": matcher.threshold, "matcher_note": note,
        "provider": model.provider, "model": model.model, "command": cfg.command,
    }  # fmt: skip
    return {"kind": "header", "benchmark": "decomposition", "config": config, "names": names,
            "created_utc": now_utc(), "machine": machine_info(), "skipped_records": loaded.skipped,
            "skipped_methods": skipped_methods}  # fmt: skip


def _plain(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as ``rows.jsonl`` holds it (a JSON round trip), so the report made now and the one
    regenerated from the file are the same."""
    from genesis_ps.bench.report import plain_json

    out: dict[str, Any] = plain_json(obj)
    return out


async def run_decomposition(cfg: DecompositionConfig, model: TokenModel) -> dict[str, Any]:
    """Run the benchmark on ``model``; write rows as they finish and the report at the end."""
    from genesis_ps.bench.decomposition_report import report_from_lines, write_reports
    from genesis_ps.bench.matching import get_matcher
    from genesis_ps.bench.report import JsonlWriter, progress

    if any(m.tilt for m in cfg.methods):
        check_tilt_lambda(cfg.tilt_lambda)
    methods, skipped_methods = split_by_capabilities(model, cfg.methods)
    if not methods:
        raise ConfigError("methods", "; ".join(f"{s['method']}: {s['reason']}" for s in skipped_methods))
    regular = [m for m in methods if not m.baseline]
    kinds = [m.sampler for m in methods if m.baseline]
    power = [m.name for m in regular if m.power]
    if kinds and not power:
        raise ConfigError("methods", "bon / self_consistency are matched to power methods: list at least one")
    loaded = load_records(cfg.data, cfg.domains, cfg.limit, cfg.pick)
    records = loaded.records
    if not records:
        raise ConfigError("domains", f"no usable records selected ({len(loaded.skipped)} skipped) from {cfg.data}")
    matcher, matcher_note = get_matcher(cfg.matcher, threshold=cfg.match_threshold)
    out_dir = Path(cfg.out) if cfg.out else None
    by_name = {m.name: m for m in methods}
    names = [m.name for m in regular] + [baseline_name(kd, m) for m in power for kd in kinds]
    lines = [_plain(_header(cfg, model, matcher, matcher_note, names, loaded, skipped_methods))]
    t_start = time.perf_counter()
    with (
        JsonlWriter(out_dir / "rows.jsonl" if out_dir else None) as sink,
        progress(len(records) * len(names), "decomposition", enabled=cfg.progress) as advance,
    ):
        sink.write(lines[0])
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
                    row = {"kind": "error", "id": rec.id, "domain": rec.domain, "method": name,
                           "error": f"{type(e).__name__}: {e}"}  # fmt: skip
                lines.append(_plain(row))
                sink.write(row)
                note = "error" if "error" in row else f"f1_chain={row['f1_chain']:.2f}"
                advance(1, f"{rec.domain} {name}: {note}")
                if spec.power and "error" not in row:
                    tokens[name] = row["tokens_generated"]
                if k == len(regular):  # every regular method done: queue the baselines matched to each
                    jobs += [
                        (by_name[kind], _baseline_generator(model, rec, kind, tokens[m], cfg, seed, pools),
                         baseline_name(kind, m))
                        for m in power if m in tokens for kind in kinds
                    ]  # fmt: skip
        footer = {"kind": "footer", "wall_s": time.perf_counter() - t_start}
        lines.append(footer)
        sink.write(footer)
    report = report_from_lines(lines)
    if out_dir is not None:
        report["files"] = write_reports(report, out_dir)
    return report

