"""The run of ``genesis-ps bench code``: HumanEval pass@1 of power sampling, matched best-of-N and SE-Darwin.

Every selected problem (:mod:`genesis_ps.bench.humaneval`) runs with every method
(:mod:`genesis_ps.bench.code_methods`) under ``--seeds`` K seeds (greedy once); each answer is scored in
the package's sandbox against the problem's hidden ``check``. ``bon[power-mh]`` draws standard samples
until their measured tokens match power-mh's on that problem and seed, and returns the one with the
highest mean log-likelihood per token (:class:`~genesis_ps.bench.baselines.Pool`, shared by every
power method). SE-Darwin evolves with the prompt's doctest examples as its only tests
(:func:`~genesis_ps.bench.humaneval.public_tests`); its archive's best candidate is then scored with the
hidden tests. Methods the provider cannot run are skipped, with the reason in the report.

``rows.jsonl`` starts with a header line (configuration, machine, start time), then one line per answer as
it is scored; ``--report DIR`` rebuilds report.json, report.md and the plots from it alone
(:mod:`genesis_ps.bench.code_report`). The flags are in :mod:`genesis_ps.bench.code`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis_ps.bench.code_methods import CodeMethods, candidate, code_prompt, parse_code_methods, unsupported
from genesis_ps.bench.humaneval import HumanEvalProblem, public_tests, score_completion
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.evaluators.base import Score
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["DEFAULT_METHODS", "CodeConfig", "check_sandbox", "run_code"]

DEFAULT_METHODS = "single,low-temp,power-mh,power-smc,bon,darwin,darwin-power"


@dataclass
class CodeConfig:
    methods: CodeMethods = field(default_factory=lambda: parse_code_methods(DEFAULT_METHODS))
    params: SamplerParams = field(
        default_factory=lambda: SamplerParams(max_new_tokens=128, block_size=32, n_mcmc=1, n_particles=4)
    )
    prompt_style: str = "completion"
    seeds: int = 1
    seed: int = 0
    baseline_temperature: float = 1.0
    darwin_sampler: str = "smc"
    """The power-sampling operator's sampler (``mh`` or ``smc``)."""
    darwin_population: int = 1
    darwin_generations: int = 1
    darwin_offspring: int = 1
    timeout_s: float = 10.0
    """Sandbox wall-clock limit per program."""
    allow_weak_sandbox: bool | None = None
    out: str | None = None
    progress: bool = False
    command: str = ""
    subset: str = ""


def check_sandbox(allow_weak: bool | None) -> str:
    """The sandbox this machine gives generated code; a ConfigError when it is weaker than a boundary and
    weak sandboxes are not allowed (``--allow-weak-sandbox`` or ``POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1``)."""
    from genesis_ps.evaluators.isolation import runtime

    rt = runtime()
    if rt.strong:
        return rt.detail
    if allow_weak is None:
        from genesis_ps.settings import Settings

        allow_weak = Settings.from_env().allow_weak_sandbox
    if not allow_weak:
        raise ConfigError("sandbox", f"the sandbox here is weaker than a boundary ({rt.detail}); generated "
                          "code would run on this host. Install bubblewrap, or opt in with --allow-weak-sandbox")
    return f"WEAK (allowed): {rt.detail}"


class _PublicTests:
    """SE-Darwin's evaluator: the prompt's doctest examples, run in the sandbox after the prompt."""

    name = "humaneval_public"

    def __init__(self, problem: HumanEvalProblem, cfg: CodeConfig) -> None:
        from genesis_ps.evaluators.code import CodeEvaluator
        from genesis_ps.evaluators.sandbox import SandboxLimits

        self.problem = problem
        self.tests = public_tests(problem)
        lim = SandboxLimits(timeout_s=cfg.timeout_s, cpu_s=max(1, int(cfg.timeout_s)))
        self._ev = CodeEvaluator(self.tests or None, limits=lim, extract=False,
                                 allow_weak_sandbox=cfg.allow_weak_sandbox)  # fmt: skip

    def evaluate(self, text: str, context: Any = None) -> Score:
        if not self.tests:
            return Score(None, error="the prompt has no doctest examples", evaluator=self.name)
        return self._ev.evaluate(self.problem.prompt + "\n" + text)


def _fields(r: GenerationResult) -> dict[str, Any]:
    """What a row records of one generation (all measured)."""
    return {"text": r.text, "tokens_generated": r.tokens_generated, "tokens_returned": r.tokens_returned,
            "logp_sum": r.logp_sum, "fallback": r.fallback, "method_ran": r.method,
            "acceptance_rate": r.acceptance_rate}  # fmt: skip


def _row(pid: str, method: str, k: int, seed: int | None, gen: dict[str, Any], wall: float, code: str,
         full: bool, problem: HumanEvalProblem, cfg: CodeConfig) -> dict[str, Any]:  # fmt: skip
    """One scored answer: ``gen`` (:func:`_fields`) plus its sandbox verdict on the hidden tests."""
    t0 = time.perf_counter()
    s = score_completion(problem, code, timeout_s=cfg.timeout_s, allow_weak_sandbox=cfg.allow_weak_sandbox,
                         full_program=full)  # fmt: skip
    return {"kind": "sample", "id": pid, "method": method, "seed_index": k, "seed": seed, "passed": s["passed"],
            "status": s["status"], "reason": (s["reason"] or "")[:300], **gen, "code": code, "wall_s": wall,
            "score_s": time.perf_counter() - t0}  # fmt: skip


def _seed(cfg: CodeConfig, i: int, k: int) -> int:
    return ((cfg.seed * 1_000_003 + i) * 101 + k) % 2**31


async def _sampling(model: TokenModel, p: HumanEvalProblem, cfg: CodeConfig, i: int, skip: set[str],
                    emit: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    """``emit`` the rows of the sampling methods and the matched best-of-N on one problem (every seed)."""
    from genesis_ps.bench.baselines import Pool, baseline_name
    from genesis_ps.bench.methods import run_method
    from genesis_ps.generation import single_shot

    prompt = code_prompt(p.prompt, cfg.prompt_style)
    for k in range(cfg.seeds):
        params = cfg.params.with_(seed=_seed(cfg, i, k))
        tokens: dict[str, float] = {}
        for spec in cfg.methods.regular:
            if spec.name in skip or (spec.name == "greedy" and k > 0):
                continue
            t0 = time.perf_counter()
            r = await run_method(model, prompt, spec, params)
            code, full = candidate(r.text, cfg.prompt_style)
            wall = time.perf_counter() - t0
            emit(_row(p.task_id, spec.name, k, params.seed, _fields(r), wall, code, full, p, cfg))
            if spec.power:
                tokens[spec.name] = r.tokens_generated
        if not cfg.methods.bon:
            continue

        async def draw(j: int, seed: int = int(params.seed or 0), pr: Prompt = prompt) -> GenerationResult:
            s = (seed * 7919 + 1_000_003 * (j + 1)) % 2**31
            return await single_shot(model, pr, max_new_tokens=cfg.params.max_new_tokens,
                                     temperature=cfg.baseline_temperature, seed=s)  # fmt: skip

        pool = Pool(draw)
        for m, target in tokens.items():
            name = baseline_name("bon", m)
            if name in skip:
                continue
            pick = await pool.pick("bon", target)
            wall = sum(r.latency_s for r in pool.samples[: pick.n])
            code, full = candidate(pick.result.text, cfg.prompt_style)
            row = _row(p.task_id, name, k, params.seed, _fields(pick.result), wall, code, full, p, cfg)
            row |= {"tokens_generated": pick.tokens_generated, "matched_to": m, "n": pick.n, "target_tokens": target}
            emit(row)


def _darwin_generator(model: TokenModel, cfg: CodeConfig, seed: int) -> Any:
    """A :class:`~genesis_ps.generation.Generator` whose every call draws with a fresh seed."""
    from genesis_ps.generation import generate

    calls = [0]
    power_params = cfg.params.with_(method=cfg.darwin_sampler)
    plain = cfg.params.with_(method="single", temperature=cfg.baseline_temperature)

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        calls[0] += 1
        s = (seed * 7919 + 104_729 * calls[0]) % 2**31
        return await generate(model, prompt, (power_params if power else plain).with_(seed=s), power=power)

    return gen


async def _darwin(model: TokenModel, p: HumanEvalProblem, cfg: CodeConfig, i: int, skip: set[str],
                  emit: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    """``emit`` the rows of the SE-Darwin variants on one problem (every seed), with the same
    EvolutionConfig but for ``power``."""
    from genesis_ps.operators.evolution import EvolutionConfig, evolve

    ev = _PublicTests(p, cfg)
    task = f"Complete this Python function (keep its name and signature):\n\n{p.prompt.rstrip()}"
    for k in range(cfg.seeds):
        for name in cfg.methods.darwin:
            if name in skip:
                continue
            ecfg = EvolutionConfig(max_generations=cfg.darwin_generations, initial_population=cfg.darwin_population,
                                   offspring=cfg.darwin_offspring, power=name == "darwin-power",
                                   seed=_seed(cfg, i, k))  # fmt: skip
            t0 = time.perf_counter()
            res = await evolve(task, _darwin_generator(model, cfg, _seed(cfg, i, k)), ev, config=ecfg)
            wall = time.perf_counter() - t0
            best = res.best
            gen = {"text": best.text if best else "", "tokens_generated": res.tokens_generated,
                   "tokens_returned": None, "logp_sum": None, "fallback": "; ".join(res.fallbacks) or None,
                   "method_ran": "se_darwin", "acceptance_rate": None, "calls": res.model_calls,
                   "generations": res.generations, "stop_reason": res.stop_reason,
                   "operators": [t.operator for t in res.archive], "public_tests": len(ev.tests),
                   "public_score": res.score}  # fmt: skip
            emit(_row(p.task_id, name, k, _seed(cfg, i, k), gen, wall, best.candidate if best else "", True, p, cfg))


async def run_code(cfg: CodeConfig, model: TokenModel, problems: list[HumanEvalProblem]) -> dict[str, Any]:
    """Run the benchmark on ``model``; rows are written as they finish, the report at the end."""
    from genesis_ps.bench.code_report import build_report, header, write_reports
    from genesis_ps.bench.report import JsonlWriter, progress

    caps = model.capabilities
    specs = {m.name: m.sampler for m in cfg.methods.regular}
    skipped = {n: why for n in cfg.methods.names() if (why := unsupported(caps, n, specs.get(n))) is not None}
    for m in cfg.methods.power:
        if m in skipped and cfg.methods.bon:
            skipped.setdefault(f"bon[{m}]", f"it is matched to {m}, which is skipped")
    skip = set(skipped)
    head = header(cfg, model, skipped, [p.task_id for p in problems], check_sandbox(cfg.allow_weak_sandbox))
    rows: list[dict[str, Any]] = []
    out_dir = Path(cfg.out) if cfg.out else None
    per = len([n for n in cfg.methods.names() if n not in skip])
    with (
        JsonlWriter(out_dir / "rows.jsonl" if out_dir else None) as sink,
        progress(len(problems) * per * cfg.seeds, "code (HumanEval)", enabled=cfg.progress) as advance,
    ):
        sink.write(head)

        def emit(row: dict[str, Any]) -> None:
            rows.append(row)
            sink.write(row)
            advance(1 if row["kind"] == "sample" else 0,
                    f"{row['id']} {row.get('method', 'error')}: {'✓' if row.get('passed') else '✗'}")  # fmt: skip

        for i, p in enumerate(problems):
            for part in (_sampling, _darwin):
                try:
                    await part(model, p, cfg, i, skip, emit)
                except ConfigError:
                    raise
                except (GenesisError, TimeoutError, RuntimeError) as e:
                    emit({"kind": "error", "id": p.task_id, "part": part.__name__.strip("_"),
                          "error": f"{type(e).__name__}: {e}"})  # fmt: skip
    report = build_report(head, rows)
    if out_dir is not None:
        report["files"] = write_reports(report, out_dir)
    return report


