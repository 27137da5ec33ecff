"""SE-Darwin operators: each asks the model for one new candidate and returns a scored :class:`Trajectory`.

- :func:`initial` — a first candidate with a stated strategy;
- :func:`revision` — after a failed trajectory: a *different* strategy, told what went wrong;
- :func:`recombination` — merge the strong parts of two parents;
- :func:`refinement` — polish the best: fix the remaining failures, prune dead code;
- :func:`power_sampling` — an improved candidate drawn by power sampling (``generate(power=True)``).

Every operator records the generation's measured tokens, requests, method and fallback on the
trajectory, scores the extracted candidate with :func:`~genesis_ps.evaluators.base.safe_evaluate` (a
failed evaluation stays ``score=None``), and runs inside a span (``genesis_ps.darwin.<operator>``).

One call is three steps — :func:`operator_prompt`, the generation, :func:`make_trajectory` — so the
graph's ``darwin`` subgraph runs them as nodes (the generation through its power_sample / single_shot
pair, the scoring in a sandboxed evaluation node).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Evaluator, Score, safe_evaluate
from genesis_ps.evaluators.code import extract_code
from genesis_ps.generation import Generator
from genesis_ps.operators.trajectory import OPERATORS, Trajectory
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = [
    "SYSTEM",
    "DarwinContext",
    "apply_operator",
    "candidate_of",
    "initial",
    "make_trajectory",
    "operator_prompt",
    "parse_strategy",
    "power_sampling",
    "recombination",
    "refinement",
    "revision",
]

SYSTEM = "You are an expert programmer. Answer with one line 'STRATEGY: <one sentence>' and then the complete code."
_STRATEGY = re.compile(r"^[\s>*#_-]*strategy[\s*_]*[:\-–]\s*(?P<s>.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class DarwinContext:
    """What every operator needs: the task, how to generate, how to score."""

    task: str
    generate: Generator
    evaluator: Evaluator | None = None
    eval_context: Mapping[str, Any] | None = None
    language: str = "python"
    layer: str = "se_darwin"
    extract: bool = True
    """Extract fenced code from answers (False: the whole answer is the candidate)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> str:
        return f"t{next(self._ids)}"


def parse_strategy(text: str) -> str | None:
    """The 'STRATEGY: …' line of an answer, if there is one (markdown decorations tolerated)."""
    m = _STRATEGY.search(text or "")
    return m.group("s").strip("*_ ")[:300] if m else None


def _feedback(t: Trajectory) -> str:
    d = t.score_details
    if t.score is None:
        return f"the evaluation failed: {d.get('error') or 'unknown error'}"
    parts = [str(d.get("reason") or "")]
    for f in (d.get("failures") or [])[:3]:
        if isinstance(f, Mapping):
            parts.append(f"{f.get('test')}: {f.get('error')}")
    text = "; ".join(p for p in parts if p)
    return text[:800] or f"score {t.score:.2f}"


def _fence(t: Trajectory, lang: str) -> str:
    return f"```{lang}\n{t.candidate}\n```"


def _score_str(t: Trajectory) -> str:
    return "failed evaluation" if t.score is None else f"{t.score:.2f}"


def candidate_of(text: str, language: str = "python", extract: bool = True) -> str:
    """The candidate in a model answer: its fenced code (``extract``), else the whole answer."""
    return extract_code(text, language) if extract else text.strip()


def make_trajectory(
    tid: str,
    operator: str,
    parents: tuple[Trajectory, ...],
    generation: int,
    result: GenerationResult,
    candidate: str,
    score: Score,
    *,
    default_strategy: str,
) -> Trajectory:
    """The scored trajectory one operator call produced (measured tokens, requests, method, fallback)."""
    return Trajectory(
        id=tid,
        candidate=candidate,
        score=score.value,
        operator=operator,
        parent_ids=tuple(p.id for p in parents),
        strategy=parse_strategy(result.text) or default_strategy,
        generation=generation,
        text=result.text,
        score_details={**dict(score.details), "error": score.error, "evaluator": score.evaluator},
        tokens_generated=result.tokens_generated,
        requests=result.requests,
        method=result.method,
        fallback=result.fallback,
    )


async def _make(ctx: DarwinContext, operator: str, parents: tuple[Trajectory, ...], generation: int) -> Trajectory:
    prompt, power, default_strategy = operator_prompt(ctx.task, operator, parents, ctx.language)
    with (
        obs.layer_scope(ctx.layer),
        obs.span(
            f"genesis_ps.darwin.{operator}",
            operator=operator,
            generation=generation,
            parents=",".join(p.id for p in parents),
        ) as sp,
    ):
        result = await ctx.generate(prompt, power=power)
        candidate = candidate_of(result.text, ctx.language, ctx.extract)
        score = await _evaluate(ctx, candidate)
        t = make_trajectory(ctx.new_id(), operator, parents, generation, result, candidate, score,
                            default_strategy=default_strategy)  # fmt: skip
        obs.set_attributes(sp, trajectory=t.id, score=t.score, method=t.method, fallback_reason=t.fallback)
    return t


async def _evaluate(ctx: DarwinContext, candidate: str) -> Score:
    if ctx.evaluator is None:
        return Score(None, error="no evaluator configured", evaluator="none")
    score = await asyncio.to_thread(safe_evaluate, ctx.evaluator, candidate, ctx.eval_context)
    obs.record_evaluation(score.evaluator or ctx.evaluator.name, score.value, layer=ctx.layer)
    return score


def operator_prompt(
    task: str, operator: str, parents: tuple[Trajectory, ...], language: str = "python"
) -> tuple[Prompt, bool, str]:
    """``(prompt, power, default strategy)`` of one operator call on ``parents`` (none for ``initial``
    and a first ``power_sampling``; one for ``revision``, ``refinement`` and an improving
    ``power_sampling``; two for ``recombination``)."""
    lang = language
    if operator == "initial":
        text = f"Task:\n{task}\n\nWrite a complete {lang} solution in one fenced code block."
        return Prompt.user(text, system=SYSTEM), False, "direct attempt"
    if operator == "revision":
        (failed,) = parents
        text = (
            f"Task:\n{task}\n\nA previous attempt failed (score {_score_str(failed)}).\n"
            f"Its strategy: {failed.strategy}\nIts code:\n{_fence(failed, lang)}\n"
            f"What went wrong: {_feedback(failed)}\n\n"
            "Choose a DIFFERENT strategy that avoids this failure, state it, and write the complete new solution."
        )
        return Prompt.user(text, system=SYSTEM), False, f"new strategy after the failure of {failed.id}"
    if operator == "recombination":
        a, b = parents
        text = (
            f"Task:\n{task}\n\nTwo candidate solutions.\n"
            f"Candidate A (score {_score_str(a)}; strategy: {a.strategy}; problems: {_feedback(a)}):\n"
            f"{_fence(a, lang)}\n"
            f"Candidate B (score {_score_str(b)}; strategy: {b.strategy}; problems: {_feedback(b)}):\n"
            f"{_fence(b, lang)}\n\n"
            "Combine the strongest parts of both into one complete solution that fixes the problems of each."
        )
        return Prompt.user(text, system=SYSTEM), False, f"recombination of {a.id} and {b.id}"
    if operator == "refinement":
        (best,) = parents
        text = (
            f"Task:\n{task}\n\nThe best solution so far (score {_score_str(best)}; strategy: {best.strategy}):\n"
            f"{_fence(best, lang)}\nRemaining problems: {_feedback(best)}\n\n"
            "Refine it: fix the remaining problems, remove dead or redundant code, keep what works. "
            "Write the complete refined solution."
        )
        return Prompt.user(text, system=SYSTEM), False, f"refinement of {best.id}"
    if operator == "power_sampling":
        if not parents:
            text = f"Task:\n{task}\n\nWrite a complete, correct {lang} solution in one fenced code block."
            return Prompt.user(text, system=SYSTEM), True, "power-sampled candidate"
        (parent,) = parents
        text = (
            f"Task:\n{task}\n\nCurrent solution (score {_score_str(parent)}):\n{_fence(parent, lang)}\n"
            f"Problems: {_feedback(parent)}\n\nWrite an improved, complete solution."
        )
        return Prompt.user(text, system=SYSTEM), True, f"power-sampled candidate improving {parent.id}"
    raise ConfigError("operator", f"unknown operator {operator!r}; choose one of {', '.join(OPERATORS)}")


async def apply_operator(
    ctx: DarwinContext, operator: str, parents: tuple[Trajectory, ...], generation: int
) -> Trajectory:
    """Ask the model for one candidate with ``operator`` on ``parents``, score it, return the trajectory."""
    return await _make(ctx, operator, parents, generation)


async def initial(ctx: DarwinContext, generation: int = 0) -> Trajectory:
    return await _make(ctx, "initial", (), generation)


async def revision(ctx: DarwinContext, failed: Trajectory, generation: int) -> Trajectory:
    return await _make(ctx, "revision", (failed,), generation)


async def recombination(ctx: DarwinContext, a: Trajectory, b: Trajectory, generation: int) -> Trajectory:
    return await _make(ctx, "recombination", (a, b), generation)


async def refinement(ctx: DarwinContext, best: Trajectory, generation: int) -> Trajectory:
    return await _make(ctx, "refinement", (best,), generation)


async def power_sampling(ctx: DarwinContext, parent: Trajectory | None, generation: int) -> Trajectory:
    """An improved candidate sampled from p^α (the model's own sharpened distribution)."""
    return await _make(ctx, "power_sampling", () if parent is None else (parent,), generation)
