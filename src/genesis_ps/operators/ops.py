"""SE-Darwin operators: each asks the model for one new candidate and returns a scored :class:`Trajectory`.

- :func:`initial` — a first candidate with a stated strategy;
- :func:`revision` — after a failed trajectory: a *different* strategy, told what went wrong;
- :func:`recombination` — merge the strong parts of two parents;
- :func:`refinement` — polish the best: fix the remaining failures, prune dead code;
- :func:`power_sampling` — an improved candidate drawn by power sampling (``generate(power=True)``).

Every operator records the generation's measured tokens, requests, method and fallback on the
trajectory, scores the extracted candidate with :func:`~genesis_ps.evaluators.base.safe_evaluate` (a
failed evaluation stays ``score=None``), and runs inside a span (``genesis_ps.darwin.<operator>``).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genesis_ps import observability as obs
from genesis_ps.evaluators.base import Evaluator, Score, safe_evaluate
from genesis_ps.evaluators.code import extract_code
from genesis_ps.generation import Generator
from genesis_ps.operators.trajectory import Trajectory
from genesis_ps.sampling.protocol import Prompt

__all__ = [
    "DarwinContext",
    "initial",
    "parse_strategy",
    "power_sampling",
    "recombination",
    "refinement",
    "revision",
]

_SYSTEM = "You are an expert programmer. Answer with one line 'STRATEGY: <one sentence>' and then the complete code."
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


async def _make(
    ctx: DarwinContext,
    operator: str,
    prompt_text: str,
    parents: tuple[Trajectory, ...],
    generation: int,
    *,
    power: bool,
    default_strategy: str,
) -> Trajectory:
    with (
        obs.layer_scope(ctx.layer),
        obs.span(
            f"genesis_ps.darwin.{operator}",
            operator=operator,
            generation=generation,
            parents=",".join(p.id for p in parents),
        ) as sp,
    ):
        result = await ctx.generate(Prompt.user(prompt_text, system=_SYSTEM), power=power)
        candidate = extract_code(result.text, ctx.language) if ctx.extract else result.text.strip()
        score = await _evaluate(ctx, candidate)
        t = Trajectory(
            id=ctx.new_id(),
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
        obs.set_attributes(sp, trajectory=t.id, score=t.score, method=t.method, fallback_reason=t.fallback)
    return t


async def _evaluate(ctx: DarwinContext, candidate: str) -> Score:
    if ctx.evaluator is None:
        return Score(None, error="no evaluator configured", evaluator="none")
    score = await asyncio.to_thread(safe_evaluate, ctx.evaluator, candidate, ctx.eval_context)
    obs.record_evaluation(score.evaluator or ctx.evaluator.name, score.value, layer=ctx.layer)
    return score


async def initial(ctx: DarwinContext, generation: int = 0) -> Trajectory:
    text = f"Task:\n{ctx.task}\n\nWrite a complete {ctx.language} solution in one fenced code block."
    return await _make(ctx, "initial", text, (), generation, power=False, default_strategy="direct attempt")


async def revision(ctx: DarwinContext, failed: Trajectory, generation: int) -> Trajectory:
    text = (
        f"Task:\n{ctx.task}\n\nA previous attempt failed (score {_score_str(failed)}).\n"
        f"Its strategy: {failed.strategy}\nIts code:\n{_fence(failed, ctx.language)}\n"
        f"What went wrong: {_feedback(failed)}\n\n"
        "Choose a DIFFERENT strategy that avoids this failure, state it, and write the complete new solution."
    )
    return await _make(
        ctx,
        "revision",
        text,
        (failed,),
        generation,
        power=False,
        default_strategy=f"new strategy after the failure of {failed.id}",
    )


async def recombination(ctx: DarwinContext, a: Trajectory, b: Trajectory, generation: int) -> Trajectory:
    text = (
        f"Task:\n{ctx.task}\n\nTwo candidate solutions.\n"
        f"Candidate A (score {_score_str(a)}; strategy: {a.strategy}; problems: {_feedback(a)}):\n"
        f"{_fence(a, ctx.language)}\n"
        f"Candidate B (score {_score_str(b)}; strategy: {b.strategy}; problems: {_feedback(b)}):\n"
        f"{_fence(b, ctx.language)}\n\n"
        "Combine the strongest parts of both into one complete solution that fixes the problems of each."
    )
    return await _make(
        ctx,
        "recombination",
        text,
        (a, b),
        generation,
        power=False,
        default_strategy=f"recombination of {a.id} and {b.id}",
    )


async def refinement(ctx: DarwinContext, best: Trajectory, generation: int) -> Trajectory:
    text = (
        f"Task:\n{ctx.task}\n\nThe best solution so far (score {_score_str(best)}; strategy: {best.strategy}):\n"
        f"{_fence(best, ctx.language)}\nRemaining problems: {_feedback(best)}\n\n"
        "Refine it: fix the remaining problems, remove dead or redundant code, keep what works. "
        "Write the complete refined solution."
    )
    return await _make(
        ctx, "refinement", text, (best,), generation, power=False, default_strategy=f"refinement of {best.id}"
    )


async def power_sampling(ctx: DarwinContext, parent: Trajectory | None, generation: int) -> Trajectory:
    """An improved candidate sampled from p^α (the model's own sharpened distribution)."""
    if parent is None:
        text = f"Task:\n{ctx.task}\n\nWrite a complete, correct {ctx.language} solution in one fenced code block."
        parents: tuple[Trajectory, ...] = ()
    else:
        text = (
            f"Task:\n{ctx.task}\n\nCurrent solution (score {_score_str(parent)}):\n{_fence(parent, ctx.language)}\n"
            f"Problems: {_feedback(parent)}\n\nWrite an improved, complete solution."
        )
        parents = (parent,)
    return await _make(
        ctx,
        "power_sampling",
        text,
        parents,
        generation,
        power=True,
        default_strategy="power-sampled candidate" + (f" improving {parent.id}" if parent else ""),
    )
