"""Scoring one decomposition against a WorFBench gold workflow, and the answer self-consistency votes on."""

from __future__ import annotations

from typing import Any

from genesis_ps.bench.worfbench import Workflow, chain_scores, graph_scores

__all__ = ["dag_to_workflow", "score_prediction", "workflow_answer"]


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
