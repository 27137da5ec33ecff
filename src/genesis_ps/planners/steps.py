"""HTDAG planning as steps: :class:`PlanMachine` says which generation comes next (a first attempt, a
repair of an unusable answer, the decomposition of a complex task), parses and validates what came
back, and falls back to the rule-based decomposition when every attempt failed.

:func:`~genesis_ps.planners.decompose` drives it with a generator; the graph's ``plan`` subgraph drives
it node by node (``plan_prompt`` → generation pair → ``plan_validate`` → ``plan_repair`` /
``plan_expand`` / ``plan_heuristic`` → ``plan_done``), checkpointing :meth:`PlanMachine.to_dict`
(plain JSON) between steps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from genesis_ps.errors import DAGValidationError
from genesis_ps.evaluators.base import Score
from genesis_ps.planners.dag import MAX_TASKS, TaskDAG
from genesis_ps.planners.decomposition import Decomposition
from genesis_ps.planners.heuristic import classify_types, heuristic_decompose, is_complex
from genesis_ps.planners.parse import ParseOutcome, parse_dag
from genesis_ps.planners.prompts import decomposition_prompt
from genesis_ps.planners.quality import score_dag
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = ["PlanAction", "PlanMachine"]


@dataclass(frozen=True)
class PlanAction:
    """The next generation (``kind="generate"``; ``step`` is ``attempt``, ``repair`` or ``expand``) or
    none (``kind="done"``: call :meth:`PlanMachine.finish`)."""

    kind: Literal["generate", "done"]
    step: str = ""
    prompt: Prompt | None = None


_KEYS = ("request", "method", "style", "retry_style", "instructions", "max_attempts", "max_depth",
         "max_total_tasks", "classify", "phase", "attempt", "cur_style", "feedback", "reason", "generations",
         "attempts", "repairs", "dag", "fallback", "depth", "depth_reached", "frontier", "index",
         "next_frontier", "room", "expanding", "started", "untyped")  # fmt: skip


class PlanMachine:
    """One decomposition of ``request`` (arguments as :func:`~genesis_ps.planners.decompose` takes them)."""

    def __init__(self, request: str, *, method: str = "single", style: str = "json", retry_style: str | None = None,
                 instructions: str | None = None, max_attempts: int = 2, max_depth: int = 0,
                 max_total_tasks: int = 16, classify: bool = False) -> None:  # fmt: skip
        self.request, self.method, self.style, self.retry_style = request, method, style, retry_style
        self.instructions, self.max_attempts, self.max_depth = instructions, max_attempts, max_depth
        self.max_total_tasks, self.classify = max_total_tasks, classify
        self.phase = "attempts"
        self.attempt, self.cur_style, self.reason = 0, style, "no attempt"
        self.feedback: str | None = None
        self.generations: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.repairs: list[str] = []
        self.dag: dict[str, Any] | None = None
        self.fallback: str | None = None
        self.depth, self.depth_reached, self.index, self.room = 0, 0, 0, 0
        self.frontier: list[str] = []
        self.next_frontier: list[str] = []
        self.expanding: str | None = None
        self.untyped: list[str] = []
        """Ids of tasks the model gave no type (typed by rules when ``classify``)."""
        self.started = time.time()

    # ---- what to generate next ------------------------------------------------------------------------
    def next_action(self) -> PlanAction:
        if self.phase == "attempts":
            own = self.instructions if self.cur_style == self.style else None
            prompt = decomposition_prompt(self.request, style=self.cur_style, feedback=self.feedback, instructions=own)
            return PlanAction("generate", "attempt" if self.attempt == 0 else "repair", prompt)
        if self.phase == "expand" and self._seek():
            task = self._dag().get(str(self.expanding))
            prompt = decomposition_prompt(task.description, style=self.style, instructions=self.instructions)
            return PlanAction("generate", "expand", prompt)
        self.phase = "done"
        return PlanAction("done")

    def _seek(self) -> bool:
        """Move to the next complex task with room to expand it (breadth first, depth by depth)."""
        while self.depth <= self.max_depth:
            dag = self._dag()
            while self.index < len(self.frontier):
                tid = self.frontier[self.index]
                if tid in dag.ids and is_complex(dag.get(tid)) and len(dag.tasks) + 1 <= self.max_total_tasks:
                    self.expanding, self.room = tid, self.max_total_tasks - len(dag.tasks) + 1
                    return True
                self.index += 1
            self.depth += 1
            self.frontier, self.next_frontier, self.index = self.next_frontier, [], 0
            if not self.frontier:
                break
        return False

    # ---- what came back -------------------------------------------------------------------------------
    def record(self, g: GenerationResult) -> PlanAction:
        """Parse and validate the generation the last action asked for; return the next action."""
        self.generations.append(g.to_dict())
        expanding = self.phase == "expand"
        limit = min(self.room, MAX_TASKS) if expanding else min(MAX_TASKS, self.max_total_tasks)
        text = self.request if not expanding else self._dag().get(str(self.expanding)).description
        po: ParseOutcome = parse_dag(g.text, request=text, max_tasks=limit)
        self.attempts.append({"attempt": 0 if expanding else self.attempt, "style": self.style if expanding
                              else self.cur_style, "form": po.form, "repairs": po.repairs, "problems": po.problems,
                              "generation": len(self.generations) - 1, "fallback": g.fallback})  # fmt: skip
        if expanding:
            self._expand(po)
        elif po.dag is not None:
            self.dag, self.repairs = po.dag.to_dict(), [*self.repairs, *po.repairs]
            self.untyped = list(po.dag.meta.get("untyped", []))
            self._start_expansion()
        else:
            self.reason = "unparseable" if po.form == "none" else "invalid"
            if po.form == "none" and self.retry_style and self.retry_style != self.cur_style:
                self.cur_style, self.feedback = self.retry_style, None
            else:
                self.feedback = "; ".join(po.problems)[:200] or "no task list found"
            self._next_attempt()
        return self.next_action()

    def record_error(self, error: str, kind: str = "GenesisError") -> PlanAction:
        """The generation itself failed (recorded; the next attempt, or the heuristic, follows)."""
        if self.phase == "expand":
            self.attempts.append({"attempt": 0, "error": error})
            self.index += 1
        else:
            self.reason = f"generation_failed:{kind}"
            self.attempts.append({"attempt": self.attempt, "error": error})
            self.feedback = None
            self._next_attempt()
        return self.next_action()

    def _next_attempt(self) -> None:
        self.attempt += 1
        if self.attempt >= self.max_attempts:
            self.phase = "done"

    def _start_expansion(self) -> None:
        if self.max_depth > 0 and self.dag is not None:
            self.phase, self.depth, self.index = "expand", 1, 0
            self.frontier = [t["id"] for t in self.dag["tasks"]]
        else:
            self.phase = "done"

    def _expand(self, po: ParseOutcome) -> None:
        tid = str(self.expanding)
        self.index += 1
        if po.dag is None or len(po.dag.tasks) < 2:
            return
        try:
            dag = self._dag().expand(tid, po.dag.tasks, max_tasks=self.max_total_tasks)
        except DAGValidationError as e:
            self.attempts.append({"expand": tid, "problems": e.problems})
            return
        self.dag, self.depth_reached = dag.to_dict(), self.depth
        self.next_frontier += [f"{tid}.{s.id}" for s in po.dag.tasks]
        self.untyped += [f"{tid}.{u}" for u in po.dag.meta.get("untyped", [])]

    # ---- the result -----------------------------------------------------------------------------------
    @property
    def needs_heuristic(self) -> bool:
        return self.phase == "done" and self.dag is None

    def apply_heuristic(self) -> None:
        """Every attempt failed: use the rule-based decomposition, and say so in ``fallback``."""
        self.dag = heuristic_decompose(self.request, max_tasks=min(8, self.max_total_tasks)).to_dict()
        self.fallback = f"heuristic:{self.reason}"

    def finish(self) -> Decomposition:
        """The :class:`~genesis_ps.planners.Decomposition` (scored; task types classified when asked)."""
        if self.dag is None:
            self.apply_heuristic()
        dag = self._dag()
        sources: dict[str, str] = {}
        if self.classify:
            dag, sources = classify_types(dag, self.untyped, heuristic=self.fallback is not None)
        q = score_dag(dag, request=self.request, repairs=self.repairs)
        if self.fallback:
            # The model's output was unusable: its decomposition scores 0 (as an unparseable prediction does in
            # WorFBench); the rule-based plan's own structural score is kept in the details, never as the quality.
            details = {"source": "heuristic", "reason": self.fallback, "heuristic_plan_score": q.value}
            quality = Score(0.0, details=details, evaluator=q.evaluator)
        else:
            quality = Score(q.value, details={**q.details, "source": "model"}, evaluator=q.evaluator)
        return Decomposition(dag=dag, request=self.request, method=self.method,
                             generations=[GenerationResult.from_dict(g) for g in self.generations],
                             attempts=self.attempts, fallback=self.fallback, quality=quality, repairs=self.repairs,
                             depth_reached=self.depth_reached, latency_s=time.time() - self.started,
                             type_sources=sources)  # fmt: skip

    def _dag(self) -> TaskDAG:
        assert self.dag is not None
        return TaskDAG.from_dict(self.dag, request=self.request)

    # ---- checkpointable state -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _KEYS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanMachine:
        m = cls(str(d["request"]))
        for k in _KEYS:
            setattr(m, k, d[k])
        return m
