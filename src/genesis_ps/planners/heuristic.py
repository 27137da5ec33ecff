"""The decomposition used when every model attempt failed: rule-based, always a valid DAG.

It splits the request into clauses (sentences, ``;``, ``then``, ``and`` between verb phrases, list
items), types each clause by keywords, and chains them in order. It is a fallback, and it says so:
callers record ``fallback="heuristic:<why>"``. The same keyword rules type the tasks a model left
untyped (:func:`classify_types`), and say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from genesis_ps.planners.dag import MAX_DESCRIPTION_CHARS, MAX_TASKS, Task, TaskDAG

__all__ = ["classify_types", "guess_type", "heuristic_decompose", "is_complex"]

_CODE = re.compile(
    r"\b(code|implement|function|script|program|debug|refactor|api|class|python|sql|unit test|tests?\b)\w*", re.I
)
_REASON = re.compile(
    r"\b(calculate|compute|prove|solve|estimate|derive|analy[sz]e|compare|decide|why|how many|how much|work out|"
    r"figure out|reason)\w*",
    re.I,
)
_RESEARCH = re.compile(r"\b(research|find|search|look up|gather|collect|survey|investigate)\w*", re.I)
_WRITING = re.compile(r"\b(write|draft|summari[sz]e|document|describe|explain|report|email|blog)\w*", re.I)
_SPLIT = re.compile(r"(?:[.;:!?]\s+|\n+|,?\s+(?:and\s+)?then\s+|,\s+(?:and\s+)?|\s+and\s+(?=[a-z]+\b\s+\w))", re.I)


def guess_type(text: str) -> str:
    """A task type from keywords (``code`` > ``reasoning`` > ``research`` > ``writing`` > ``general``)."""
    for typ, rx in (("code", _CODE), ("reasoning", _REASON), ("research", _RESEARCH), ("writing", _WRITING)):
        if rx.search(text):
            return typ
    return "general"


def classify_types(
    dag: TaskDAG, untyped: Iterable[str] = (), *, heuristic: bool = False
) -> tuple[TaskDAG, dict[str, str]]:
    """Type the tasks the model gave no type (``untyped`` ids) by :func:`guess_type` over their text, and
    say which decided: ``{task id: "model" | "rules"}``; a heuristic plan is typed by the rules throughout.
    Small models rarely type tasks (WorFBench's ``Node:`` lines carry no type at all), so without this
    every such task would take the default route."""
    rules = set(untyped)
    tasks, sources = [], {}
    for t in dag.tasks:
        if heuristic or t.id in rules:
            tasks.append(replace(t, type=guess_type(t.description)))
            sources[t.id] = "rules"
        else:
            tasks.append(t)
            sources[t.id] = "model"
    return replace(dag, tasks=tuple(tasks)), sources


_GROUPED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}|\"[^\"]*\"|`[^`]*`")
_HIDE = str.maketrans({",": "\x00", ";": "\x01", ".": "\x02", ":": "\x03"})
_SHOW = str.maketrans({"\x00": ",", "\x01": ";", "\x02": ".", "\x03": ":"})


def _split(text: str) -> list[str]:
    """Clauses of ``text`` — never cut inside brackets or quotes (``add(a, b)``, ``"x, y"``)."""
    masked = _GROUPED.sub(lambda m: m.group(0).translate(_HIDE), text)
    return [c.translate(_SHOW) for c in _SPLIT.split(masked) if c]


def is_complex(task: Task, *, min_words: int = 14) -> bool:
    """Whether a task looks worth decomposing further: long, or several clauses."""
    words = len(task.description.split())
    clauses = len([c for c in _split(task.description) if len(c.split()) >= 2])
    return words >= min_words or clauses >= 3


def heuristic_decompose(request: str, *, max_tasks: int = 8) -> TaskDAG:
    """Clauses of ``request`` as a chain of tasks, bracketed by an understand step and a review step when
    the request has a single clause. Always returns a valid DAG for a non-empty request."""
    max_tasks = max(1, min(max_tasks, MAX_TASKS))
    text = " ".join(request.split())
    clauses = [c.strip(" ,.;:-") for c in _split(text) if c and c.strip(" ,.;:-")]
    clauses = [c for c in clauses if len(c) >= 3] or [text or "the request"]
    if len(clauses) == 1:
        core = clauses[0]
        descs = [
            f"Clarify the goal and constraints: {core}",
            f"Carry out: {core}",
            "Review the result against the goal",
        ]
    else:
        descs = [c[0].upper() + c[1:] for c in clauses]
    descs = descs[:max_tasks]
    tasks = []
    for i, d in enumerate(descs, 1):
        d = d[:MAX_DESCRIPTION_CHARS]
        tasks.append(Task(id=str(i), description=d, type=guess_type(d), depends_on=(str(i - 1),) if i > 1 else ()))
    return TaskDAG(tuple(tasks), request=request).validate().with_meta(form="heuristic")
