"""HTDAG planning: the task-graph model, defensive parsing, validation, decomposition, scheduling."""

from genesis_ps.planners.dag import MAX_TASKS, TASK_TYPES, Task, TaskDAG, find_cycle
from genesis_ps.planners.decomposition import Decomposition
from genesis_ps.planners.heuristic import classify_types, guess_type, heuristic_decompose, is_complex
from genesis_ps.planners.parse import ParseOutcome, parse_dag
from genesis_ps.planners.planner import MAX_REQUEST_CHARS, check_request, decompose
from genesis_ps.planners.prompts import decomposition_prompt, task_prompt
from genesis_ps.planners.quality import DecompositionEvaluator, score_dag
from genesis_ps.planners.steps import PlanAction, PlanMachine

__all__ = [
    "MAX_REQUEST_CHARS",
    "MAX_TASKS",
    "TASK_TYPES",
    "Decomposition",
    "DecompositionEvaluator",
    "ParseOutcome",
    "PlanAction",
    "PlanMachine",
    "Task",
    "TaskDAG",
    "check_request",
    "classify_types",
    "decompose",
    "decomposition_prompt",
    "find_cycle",
    "guess_type",
    "heuristic_decompose",
    "is_complex",
    "parse_dag",
    "score_dag",
    "task_prompt",
]
