"""HTDAG planning: :func:`decompose` a request into a validated :class:`TaskDAG`.

Each attempt generates through the power-sample / single-shot pair (``generator``; by default
:func:`genesis_ps.generation.generate` with a recorded fallback), parses defensively, validates, and
retries with feedback when the output is unusable. When every attempt fails, the heuristic decomposition
is used and ``Decomposition.fallback`` says so. Complex tasks are decomposed again, bounded by depth and
total task count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.errors import ConfigError, DAGValidationError, GenesisError
from genesis_ps.evaluators.base import Score
from genesis_ps.generation import Generator, generate
from genesis_ps.planners.dag import MAX_TASKS, TaskDAG
from genesis_ps.planners.heuristic import heuristic_decompose, is_complex
from genesis_ps.planners.parse import ParseOutcome, parse_dag
from genesis_ps.planners.prompts import decomposition_prompt
from genesis_ps.planners.quality import DecompositionEvaluator, score_dag
from genesis_ps.sampling.params import METHODS, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["MAX_REQUEST_CHARS", "Decomposition", "check_request", "decompose"]

MAX_REQUEST_CHARS = 4000
@dataclass
class Decomposition:
    """A decomposition and everything it cost. ``fallback`` is None when the model's DAG was used."""

    dag: TaskDAG
    request: str
    method: str
    """Requested generation method (``single``, ``mh``, ``smc``, ``imh``)."""
    generations: list[GenerationResult] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Per attempt: form, repairs, problems, which generation."""
    fallback: str | None = None
    """None, or ``heuristic:<why>`` when the rule-based decomposition was used."""
    quality: Score | None = None
    repairs: list[str] = field(default_factory=list)
    depth_reached: int = 0
    latency_s: float = 0.0

    @property
    def tokens_generated(self) -> int:
        return sum(g.tokens_generated for g in self.generations)

    @property
    def tokens_returned(self) -> int:
        return sum(g.tokens_returned for g in self.generations)

    @property
    def cost_multiplier(self) -> float:
        """Measured over every generation this decomposition made."""
        return self.tokens_generated / max(self.tokens_returned, 1)

    @property
    def generation_fallbacks(self) -> list[str]:
        return [g.fallback for g in self.generations if g.fallback]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.dag.to_dict(),
            "method": self.method,
            "methods_used": sorted({g.method for g in self.generations}),
            "fallback": self.fallback,
            "quality": None if self.quality is None else self.quality.value,
            "quality_details": None if self.quality is None else dict(self.quality.details),
            "cost_multiplier": round(self.cost_multiplier, 4),
            "tokens_generated": self.tokens_generated,
            "tokens_returned": self.tokens_returned,
            "generation_fallbacks": self.generation_fallbacks,
            "attempts": self.attempts,
            "generations": [g.to_dict() for g in self.generations],
            "repairs": self.repairs,
            "depth_reached": self.depth_reached,
            "latency_s": round(self.latency_s, 3),
        }


def check_request(request: object) -> str:
    """A clean request, or :class:`ConfigError` naming ``request`` (before any model work)."""
    if not isinstance(request, str) or not request.strip():
        raise ConfigError("request", "must be a non-empty text")
    if len(request) > MAX_REQUEST_CHARS:
        raise ConfigError("request", f"is {len(request)} characters; the limit is {MAX_REQUEST_CHARS}")
    try:
        request.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError("request", f"holds a character that cannot be encoded as UTF-8 at position {exc.start} "
                                     "(a lone surrogate: was the input decoded with the wrong encoding?)") from None
    return request.strip()


def _default_generator(model: TokenModel, params: SamplerParams, **kw: Any) -> Generator:
    """Generation straight through :func:`~genesis_ps.generation.generate` (the graph hands in its
    power_sample / single_shot node pair instead)."""

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        return await generate(model, prompt, params or default, power=power, **kw)

    default = params

    return gen


async def decompose(
    request: str,
    model: TokenModel | None = None,
    *,
    params: SamplerParams | None = None,
    method: str | None = None,
    power: bool | None = None,
    settings: Any = None,
    generator: Generator | None = None,
    max_attempts: int = 2,
    max_depth: int = 0,
    max_total_tasks: int = 16,
    max_new_tokens: int | None = None,
    style: str = "json",
    retry_style: str | None = "worfbench",
    instructions: str | None = None,
    lam: float = 0.0,
) -> Decomposition:
    """Decompose ``request`` into a validated task DAG.

    ``method`` (``single``/``mh``/``smc``/``imh``) overrides ``params.method``; ``power`` defaults to
    ``method != "single"``. With ``settings`` (a :class:`~genesis_ps.settings.Settings`) and no explicit
    ``params``/``power``, the ``htdag`` layer's flag and parameters decide (the graph and the CLI also
    apply the rollout percentage). ``lam > 0`` tilts power
    sampling towards higher decomposition quality. ``max_depth`` > 0 re-decomposes complex tasks.
    When an answer holds no task list at all (prose), the retry asks in ``retry_style`` instead (small
    models that cannot write JSON often manage WorFBench's ``Node:``/``Edge:`` lines); None disables it.
    Raises :class:`ConfigError` for bad arguments; never raises because of the model's output.
    """
    req = check_request(request)
    if model is None and generator is None:
        raise ConfigError("model", "decompose needs a model or a generator")
    if generator is not None and lam:
        raise ConfigError("lam", "a custom generator applies its own tilt; pass lam only with model=")
    for name, value, low in (
        ("max_attempts", max_attempts, 1),
        ("max_depth", max_depth, 0),
        ("max_total_tasks", max_total_tasks, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(name, f"must be an integer >= {low}, got {value!r}")
    disabled_reason = "disabled"
    if settings is not None and params is None:
        layer = settings.layer("htdag")
        params = layer.params
        if power is None:
            power, disabled_reason = layer.enabled, "flag_off"
    p = params or SamplerParams(method="single", max_new_tokens=192)
    if method is not None:
        if method not in METHODS:
            raise ConfigError("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        p = p.with_(method=method)
    if max_new_tokens is not None:
        p = p.with_(max_new_tokens=max_new_tokens)
    use_power = (p.method != "single") if power is None else bool(power and p.method != "single")
    if generator is None:
        assert model is not None
        kw: dict[str, Any] = {"disabled_reason": disabled_reason}
        if lam > 0:
            from genesis_ps.evaluators.base import as_reward

            kw |= {"reward": as_reward(DecompositionEvaluator(), {"request": req}), "lam": lam}
        generator = _default_generator(model, p, **kw)
    t0 = time.perf_counter()
    out = Decomposition(dag=TaskDAG(()), request=req, method=p.method)
    dag, reason = await _attempts(
        req,
        p,
        use_power,
        generator,
        out,
        max_attempts,
        style,
        instructions,
        min(MAX_TASKS, max_total_tasks),
        retry_style=retry_style,
    )
    if dag is None:
        dag = heuristic_decompose(req, max_tasks=min(8, max_total_tasks))
        out.fallback = f"heuristic:{reason}"
    elif max_depth > 0:
        dag = await _recurse(dag, req, p, use_power, generator, out, max_depth, max_total_tasks, style, instructions)
    out.dag = dag
    q = score_dag(dag, request=req, repairs=out.repairs)
    if out.fallback:
        # The model's output was unusable: its decomposition scores 0 (as an unparseable prediction does in
        # WorFBench); the rule-based plan's own structural score is kept in the details, never as the quality.
        out.quality = Score(
            0.0,
            details={"source": "heuristic", "reason": out.fallback, "heuristic_plan_score": q.value},
            evaluator=q.evaluator,
        )
    else:
        out.quality = Score(q.value, details={**q.details, "source": "model"}, evaluator=q.evaluator)
    out.latency_s = time.perf_counter() - t0
    return out


async def _attempts(
    req: str,
    p: SamplerParams,
    use_power: bool,
    generator: Generator,
    out: Decomposition,
    max_attempts: int,
    style: str,
    instructions: str | None,
    max_tasks: int,
    *,
    record_repairs: bool = True,
    retry_style: str | None = None,
) -> tuple[TaskDAG | None, str]:
    feedback: str | None = None
    reason = "no attempt"
    cur = style
    for attempt in range(max_attempts):
        own = instructions if cur == style else None  # custom instructions belong to the requested style
        prompt = decomposition_prompt(req, style=cur, feedback=feedback, instructions=own)
        try:
            g = await generator(prompt, power=use_power, params=p)
        except ConfigError:
            raise
        except (GenesisError, TimeoutError) as exc:  # single-shot itself failed: recorded, retried
            reason = f"generation_failed:{type(exc).__name__}"
            out.attempts.append({"attempt": attempt, "error": f"{type(exc).__name__}: {exc}"})
            feedback = None
            continue
        out.generations.append(g)
        po: ParseOutcome = parse_dag(g.text, request=req, max_tasks=max_tasks)
        out.attempts.append(
            {
                "attempt": attempt,
                "style": cur,
                "form": po.form,
                "repairs": po.repairs,
                "problems": po.problems,
                "generation": len(out.generations) - 1,
                "fallback": g.fallback,
            }
        )
        if po.dag is not None:
            if record_repairs:
                out.repairs.extend(po.repairs)
            return po.dag, ""
        reason = "unparseable" if po.form == "none" else "invalid"
        if po.form == "none" and retry_style and retry_style != cur:
            cur, feedback = retry_style, None
        else:
            feedback = "; ".join(po.problems)[:200] or "no task list found"
    return None, reason


async def _recurse(
    dag: TaskDAG,
    req: str,
    p: SamplerParams,
    use_power: bool,
    generator: Generator,
    out: Decomposition,
    max_depth: int,
    max_total: int,
    style: str,
    instructions: str | None,
) -> TaskDAG:
    """Breadth-first: expand complex tasks level by level while depth and the task budget allow."""
    frontier = [t.id for t in dag.tasks]
    for depth in range(1, max_depth + 1):
        next_frontier: list[str] = []
        for tid in frontier:
            task = dag.get(tid)
            if not is_complex(task) or len(dag.tasks) + 1 > max_total:
                continue
            room = max_total - len(dag.tasks) + 1
            sub, _ = await _attempts(
                task.description,
                p,
                use_power,
                generator,
                out,
                1,
                style,
                instructions,
                min(room, MAX_TASKS),
                record_repairs=False,
            )
            if sub is None or len(sub.tasks) < 2:
                continue
            try:
                dag = dag.expand(tid, sub.tasks, max_tasks=max_total)
            except DAGValidationError as e:
                out.attempts.append({"expand": tid, "problems": e.problems})
                continue
            out.depth_reached = depth
            next_frontier += [f"{tid}.{s.id}" for s in sub.tasks]
        frontier = next_frontier
        if not frontier:
            break
    return dag
