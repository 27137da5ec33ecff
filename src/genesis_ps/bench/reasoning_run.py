"""The runner of ``genesis-ps bench reasoning``: does one power-sampled SICA pass replace the loop's rounds?

The design plan claims that with the SICA layer's power-sampling flag on, "one MCMC pass replaces 3–5
chain-of-thought rounds": 40–60% fewer LLM calls at equal or better reasoning. Methods, on the same
problems (:mod:`genesis_ps.bench.reasoning_data`):

- ``cot`` — one plain chain-of-thought generation (SICA's draft prompt, at ``temperature``);
- ``sica`` — the iterative loop (:func:`~genesis_ps.loops.run_sica`, mode ``iterative``): draft →
  critique → refine with the model's own critique, up to ``max_iterations`` answers (the graph's
  default, 3);
- ``sica-power`` — the loop as the layer runs it with its flag on (mode ``power``): one power-sampled
  draft, then the same critique check, up to ``power_max_iterations`` answers (the graph's default, 2);
- ``sica-power-only`` — the power-sampled draft alone (``power_verify`` off): one call. When
  ``sica-power`` runs too, it is read off ``sica-power``'s first step (same prompt, seed and sampler, so
  the same text), and its row says ``derived_from``;
- ``bon`` / ``self_consistency`` — best-of-N / majority vote over CoT samples at
  ``baseline_temperature`` whose tokens match ``sica-power``'s measured tokens on each problem
  (:mod:`genesis_ps.bench.baselines`).

No method sees the reference answer: the loops score with the model's own critique. ``model_calls``
counts the loop's generations (an LLM call each, a power-sampled pass included), ``requests`` what the
provider served (a power pass is many), ``tokens_generated`` every token sampled. Methods that need
log-probabilities are skipped on a provider without them, with the reason in the report.
Rows stream to ``rows.jsonl`` (a header line first); the report is a function of that file alone, so
``genesis-ps bench reasoning report DIR`` regenerates it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genesis_ps.bench.reasoning_data import TASKS, ReasoningItem, arithmetic_items, math500_items
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.loops.sica_state import SicaConfig
from genesis_ps.sampling.params import SamplerParams, check_temperature
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["METHODS", "ReasoningConfig", "build_items", "parse_methods", "run_reasoning", "skipped_methods"]

METHODS = ("cot", "sica", "sica-power", "sica-power-only", "bon", "self_consistency")
BASELINES = ("bon", "self_consistency")
MATCHED_TO = "sica-power"
DEFAULT_METHODS = "cot,sica,sica-power,sica-power-only,self_consistency"
_ALIASES = {"self-consistency": "self_consistency", "sc": "self_consistency", "best-of-n": "bon",
            "sica_power": "sica-power", "sica_power_only": "sica-power-only"}  # fmt: skip


def parse_methods(text: str) -> list[str]:
    """``"cot,sica"`` → names in order without duplicates; unknown names, or a baseline without
    ``sica-power`` to match, are a ConfigError."""
    out: list[str] = []
    for raw in (n.strip() for n in text.split(",")):
        name = _ALIASES.get(raw, raw)
        if not name:
            continue
        if name not in METHODS:
            raise ConfigError("methods", f"unknown method {raw!r}; choose from {', '.join(METHODS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError("methods", "give at least one method")
    if any(m in BASELINES for m in out) and MATCHED_TO not in out:
        raise ConfigError("methods", f"bon / self_consistency are matched to {MATCHED_TO}'s tokens: list it too")
    return out


@dataclass
class ReasoningConfig:
    task: str = "arithmetic"
    limit: int = 20
    kind: str = "add20"
    shots: int = 0
    data: str | None = None
    subset: str = "shortest"
    methods: list[str] = field(default_factory=lambda: parse_methods(DEFAULT_METHODS))
    params: SamplerParams = field(
        default_factory=lambda: SamplerParams(method="mh", alpha=4.0, n_mcmc=2, block_size=16, max_new_tokens=32)
    )
    """The power-sampled pass; its ``max_new_tokens`` bounds every generation."""
    temperature: float = 0.0
    """Plain generations (cot, the loops' drafts, critiques and refinements); 0 is greedy."""
    sica: SicaConfig = field(default_factory=lambda: SicaConfig(max_iterations=3, power_max_iterations=2))
    """The graph's default stop rule (``genesis_ps.graph.env.DEFAULT_SICA``)."""
    baseline_temperature: float = 1.0
    seed: int = 0
    out: str | None = None
    progress: bool = False
    command: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError("task", f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigError("limit", f"must be an integer >= 1, got {self.limit!r}")
        check_temperature(self.temperature, "temperature")
        check_temperature(self.baseline_temperature, "baseline_temperature")


def build_items(cfg: ReasoningConfig) -> list[ReasoningItem]:
    """The problems of ``cfg`` (bad data fails here, before any model loads)."""
    if cfg.task == "arithmetic":
        return arithmetic_items(cfg.limit, kind=cfg.kind, shots=cfg.shots, seed=cfg.seed)
    from genesis_ps.bench.math500 import default_math500

    path = cfg.data or default_math500()
    if path is None:
        raise ConfigError("data", "no --data given and ../shared/benchmarks/math500/MATH500.json does not exist here")
    return math500_items(path, cfg.limit, subset=cfg.subset)


def skipped_methods(model: TokenModel, methods: list[str]) -> dict[str, str]:
    """The methods that cannot run on ``model`` and why (they need log-probabilities it does not give)."""
    if model.capabilities.logprobs != "none":
        return {}
    who = f"{model.provider}/{model.model} returns no log-probabilities"
    why = {"sica-power": f"{who}, and a power-sampled pass needs them",
           "sica-power-only": f"{who}, and a power-sampled pass needs them",
           "bon": f"{who}, and best-of-N ranks samples by log-likelihood",
           "self_consistency": f"matched to sica-power's tokens, which cannot run: {who}"}  # fmt: skip
    return {m: why[m] for m in methods if m in why}


class _Recorder:
    """A Generator over ``model`` that keeps every result it returns (for per-step latency)."""

    def __init__(self, model: TokenModel, params: SamplerParams, temperature: float) -> None:
        from genesis_ps.generation import model_generator

        self.results: list[GenerationResult] = []
        self._gen = model_generator(model, params, single_temperature=temperature)

    async def __call__(self, prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        r = await self._gen(prompt, power=power, params=params)
        self.results.append(r)
        return r


def _row(item: ReasoningItem, method: str, text: str, **cost: Any) -> dict[str, Any]:
    ok, extracted = item.check(text)
    return {"id": item.id, "method": method, "correct": bool(ok), "extracted": extracted, "answer": item.answer,
            "text": text[:2000], **cost}  # fmt: skip


async def _cot(model: TokenModel, item: ReasoningItem, cfg: ReasoningConfig, seed: int) -> dict[str, Any]:
    from genesis_ps.generation import single_shot
    from genesis_ps.loops.critique import draft_prompt

    t0 = time.perf_counter()
    r = await single_shot(model, draft_prompt(item.task), max_new_tokens=cfg.params.max_new_tokens,
                          temperature=cfg.temperature, seed=seed)  # fmt: skip
    return _row(item, "cot", r.text, model_calls=1, requests=r.requests, tokens_generated=r.tokens_generated,
                wall_s=time.perf_counter() - t0, iterations=1, stop_reason="single", fallbacks=[],
                steps=[])  # fmt: skip


async def _sica(
    model: TokenModel, item: ReasoningItem, cfg: ReasoningConfig, seed: int, name: str
) -> list[dict[str, Any]]:
    """The row of ``name`` (``sica``, ``sica-power`` or ``sica-power-only``); ``sica-power`` also yields the
    ``sica-power-only`` row read off its first step when that method is listed."""
    from genesis_ps.loops.sica import run_sica

    config = replace(cfg.sica, power_verify=False) if name == "sica-power-only" else cfg.sica
    rec = _Recorder(model, cfg.params.with_(seed=seed, temperature=cfg.temperature), cfg.temperature)
    t0 = time.perf_counter()
    res = await run_sica(item.task, rec, mode="iterative" if name == "sica" else "power", config=config)
    wall = time.perf_counter() - t0
    steps = [{"kind": s.kind, "method": s.method, "tokens_generated": s.tokens_generated, "requests": s.requests,
              "latency_s": g.latency_s, "fallback": s.fallback, "score": s.score, "error": s.error}
             for s, g in zip(res.history, rec.results, strict=True)]  # fmt: skip
    rows = [_row(item, name, res.text, model_calls=res.model_calls, requests=res.requests,
                 tokens_generated=res.tokens_generated, wall_s=wall, iterations=res.iterations,
                 stop_reason=res.stop_reason, fallbacks=list(res.fallbacks), steps=steps)]  # fmt: skip
    if name == "sica-power" and "sica-power-only" in cfg.methods and res.history:
        s, g = res.history[0], rec.results[0]
        rows.append(_row(item, "sica-power-only", s.text, model_calls=1, requests=s.requests,
                         tokens_generated=s.tokens_generated, wall_s=g.latency_s, iterations=1,
                         stop_reason="power_only", fallbacks=[s.fallback] if s.fallback else [], steps=[steps[0]],
                         derived_from="sica-power"))  # fmt: skip
    return rows


async def _baselines(
    model: TokenModel, item: ReasoningItem, cfg: ReasoningConfig, seed: int, target: float
) -> list[dict[str, Any]]:
    from genesis_ps.bench.baselines import Pool, baseline_name
    from genesis_ps.generation import single_shot
    from genesis_ps.loops.critique import draft_prompt

    prompt = draft_prompt(item.task)

    async def draw(j: int) -> GenerationResult:
        s = (seed * 7919 + 1_000_003 * (j + 1)) % 2**31
        return await single_shot(model, prompt, max_new_tokens=cfg.params.max_new_tokens,
                                 temperature=cfg.baseline_temperature, seed=s)  # fmt: skip

    pool, out = Pool(draw), []
    for kind in (m for m in cfg.methods if m in BASELINES):
        pick = await pool.pick(kind, target, extract=lambda text: item.check(text)[1])
        used = pool.samples[: pick.n]
        out.append(_row(item, baseline_name(kind, MATCHED_TO), pick.result.text, model_calls=pick.n,
                        requests=sum(r.requests for r in used), tokens_generated=pick.tokens_generated,
                        wall_s=sum(r.latency_s for r in used), iterations=pick.n, stop_reason=kind,
                        fallbacks=[], steps=[], n=pick.n, target_tokens=target, votes=pick.votes))  # fmt: skip
    return out


def report_methods(methods: list[str]) -> list[str]:
    """Method names as the report shows them (baselines as ``kind[sica-power]``)."""
    return [f"{m}[{MATCHED_TO}]" if m in BASELINES else m for m in methods]


def _jobs(runnable: list[str]) -> list[str]:
    """What to run per problem, in order: each method, ``sica-power-only`` only when ``sica-power`` does
    not run (else it is read off that), and the baselines together (they share one pool of samples)."""
    jobs = [m for m in runnable if m not in BASELINES and not (m == "sica-power-only" and MATCHED_TO in runnable)]
    return jobs + (["baselines"] if any(m in BASELINES for m in runnable) else [])


async def run_reasoning(
    cfg: ReasoningConfig, model: TokenModel, items: list[ReasoningItem] | None = None
) -> dict[str, Any]:
    """Run the benchmark on ``model``; rows stream to ``rows.jsonl``, the report is built from them."""
    from genesis_ps.bench.reasoning_report import build_report, header, write_reports
    from genesis_ps.bench.report import JsonlWriter, progress

    items = items if items is not None else build_items(cfg)
    skipped = skipped_methods(model, cfg.methods)
    runnable = [m for m in cfg.methods if m not in skipped]
    head = header(cfg, model, n_items=len(items), methods=report_methods(cfg.methods), skipped=skipped)
    rows: list[dict[str, Any]] = []
    out_dir = Path(cfg.out) if cfg.out else None
    with (
        JsonlWriter(out_dir / "rows.jsonl" if out_dir else None) as sink,
        progress(len(items) * len(runnable), f"reasoning ({cfg.task})", enabled=cfg.progress) as advance,
    ):
        sink.write(head)
        for i, item in enumerate(items):
            seed = (cfg.seed * 1_000_003 + i) * 101
            target: float | None = None
            for job in _jobs(runnable):
                try:
                    if job == "baselines":
                        new = [] if target is None else await _baselines(model, item, cfg, seed, target)
                    elif job == "cot":
                        new = [await _cot(model, item, cfg, seed)]
                    else:
                        new = await _sica(model, item, cfg, seed, job)
                except ConfigError:
                    raise
                except (GenesisError, TimeoutError, RuntimeError) as e:
                    new = [{"kind": "error", "id": item.id, "method": job, "error": f"{type(e).__name__}: {e}"}]
                for row in new:
                    rows.append(row)
                    sink.write(row)
                    if row["method"] == MATCHED_TO and "kind" not in row:
                        target = float(row["tokens_generated"])
                    advance(1, f"{row['method']}: {'error' if 'kind' in row else '✓' if row['correct'] else '✗'}")
    report = build_report(head, rows)
    if out_dir is not None:
        report["files"] = write_reports(report, out_dir)
    return report
