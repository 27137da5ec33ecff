"""Defensive parsing of a model's decomposition into a :class:`~genesis_ps.planners.dag.TaskDAG`.

:func:`parse_dag` never raises on any input text. It accepts, in this order:

1. JSON — inside prose or code fences, ``{"tasks": [...]}``, a bare list, or other common wrappers;
   strict JSON first, else repaired by json-repair (:mod:`.jsontext`). What the text needed is listed in
   :attr:`ParseOutcome.repairs`.
2. WorFBench's text form ``Node:\\n1: ...\\nEdge: (START,1) (1,2) (2,END)``.
3. A numbered or bulleted list, read as a chain of steps (a recorded repair).

An outcome with ``dag`` set always holds a *valid* DAG; otherwise ``problems`` says why. Our own code is
kept for finding the JSON, WorFBench text, lists and DAG validation. Every step is linear in the text: the
patterns are bounded (no ``^\s*`` under MULTILINE, which made a run of newlines quadratic), and the
JSON is loaded by :mod:`.jsontext`, whose repairer's work is capped. Lone surrogates, which no UTF-8
output can encode, become U+FFFD (a recorded repair).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.planners.dag import MAX_DESCRIPTION_CHARS, MAX_TASKS, TASK_TYPES, Task, TaskDAG
from genesis_ps.planners.jsontext import MAX_NESTING, MAX_REPAIR_CHARS, load_json

__all__ = ["MAX_NESTING", "MAX_REPAIR_CHARS", "MAX_TEXT_CHARS", "ParseOutcome", "parse_dag"]

MAX_TEXT_CHARS = 100_000
"""Longer model outputs are refused (a decomposition is never that long)."""

_TYPE_ALIASES = {
    "math": "reasoning",
    "analysis": "reasoning",
    "think": "reasoning",
    "logic": "reasoning",
    "coding": "code",
    "programming": "code",
    "implementation": "code",
    "implement": "code",
    "search": "research",
    "lookup": "research",
    "write": "writing",
    "text": "writing",
    "action": "tool",
    "api": "tool",
    "tool_call": "tool",
    "other": "general",
    "task": "general",
}
_DESC_KEYS = ("description", "desc", "task", "name", "title", "step", "action", "text", "content", "subtask")
_DEP_KEYS = ("depends_on", "dependencies", "deps", "depends", "after", "requires", "parents", "prerequisites")
_LIST_KEYS = ("tasks", "subtasks", "steps", "nodes", "plan", "dag", "workflow", "items")


@dataclass
class ParseOutcome:
    """What :func:`parse_dag` made of a text: the DAG (valid) or the problems, and every repair made."""

    dag: TaskDAG | None
    form: str = "none"
    """``json``, ``worfbench``, ``list`` or ``none``."""
    repairs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dag is not None


def parse_dag(text: object, *, request: str = "", max_tasks: int = MAX_TASKS) -> ParseOutcome:
    """Parse model output into a valid DAG, repairing what is safe to repair. Never raises. Linear time in
    the length of ``text`` (capped at ``MAX_TEXT_CHARS``): every pattern is bounded, JSON is scanned once,
    and only texts of at most ``MAX_REPAIR_CHARS`` reach the repairer."""
    try:
        note = ""
        if isinstance(text, str) and _SURROGATE.search(text):
            n = len(_SURROGATE.findall(text))
            text, note = _clean(text), f"replaced {n} character(s) that cannot be encoded (lone surrogates) with U+FFFD"
        out = _parse(text, request=request, max_tasks=max_tasks)
    except Exception as exc:  # defensive: a parser bug must become a recorded problem, not a crash
        return ParseOutcome(None, problems=[f"parser error: {type(exc).__name__}: {exc}"])
    if note:
        out.repairs.insert(0, note)
        if out.dag is not None:
            out.dag = out.dag.with_meta(repairs=list(out.repairs))
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(s: str) -> str:
    """``s`` with lone surrogates (which no UTF-8 output can encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", s)


def _parse(text: object, *, request: str, max_tasks: int) -> ParseOutcome:
    if not isinstance(text, str):
        return ParseOutcome(None, problems=[f"expected text, got {type(text).__name__}"])
    if not text.strip():
        return ParseOutcome(None, problems=["the model returned empty text"])
    if len(text) > MAX_TEXT_CHARS:
        return ParseOutcome(None, problems=[f"output too long: {len(text)} > {MAX_TEXT_CHARS} characters"])
    attempts: list[ParseOutcome] = []
    if re.search(r"(?im)^[ \t]*node[ \t]*:", text) or re.search(r"(?i)edge[ \t]*:\s*\(", text):
        attempts.append(_parse_worfbench(text, request, max_tasks))
        if attempts[-1].ok:
            return attempts[-1]
    js = _parse_json(text, request, max_tasks)
    if js is not None:
        if js.ok:
            return js
        attempts.append(js)
    lst = _parse_list(text, request, max_tasks)
    if lst is not None:
        if lst.ok or not attempts:
            return lst
    if attempts:
        return attempts[0]
    return ParseOutcome(None, problems=["no JSON task list, WorFBench Node:/Edge: block or numbered list found"])


# ---- JSON -------------------------------------------------------------------------------------------
def _parse_json(text: str, request: str, max_tasks: int) -> ParseOutcome | None:
    loaded = load_json(text)
    if loaded is None:
        return None
    if loaded.problem is not None:
        return ParseOutcome(None, form="json", repairs=loaded.repairs, problems=[loaded.problem])
    return _from_data(loaded.data, request, max_tasks, loaded.repairs)


def _from_data(data: Any, request: str, max_tasks: int, repairs: list[str]) -> ParseOutcome:
    items: Any = data
    if isinstance(data, Mapping):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                items = data[key]
                if key != "tasks":
                    repairs.append(f"read tasks from key {key!r}")
                break
        else:
            if any(k in data for k in _DESC_KEYS):
                items = [data]
                repairs.append("a single task object became a one-task list")
    if not isinstance(items, list):
        return ParseOutcome(None, form="json", repairs=repairs, problems=["JSON holds no list of tasks"])
    if len(items) > max_tasks:
        return ParseOutcome(
            None, form="json", repairs=repairs, problems=[f"too many tasks: {len(items)} > {max_tasks}"]
        )
    raw: list[dict[str, Any]] = []
    for i, it in enumerate(items, 1):
        if isinstance(it, str):
            raw.append({"id": str(i), "description": it, "depends_on": [str(i - 1)] if i > 1 else []})
            if i == 1:
                repairs.append("a list of strings became a chain of tasks")
            continue
        if not isinstance(it, Mapping):
            return ParseOutcome(None, form="json", repairs=repairs, problems=[f"task {i} is not an object"])
        raw.append(dict(it))
    return _build(raw, request, max_tasks, repairs, "json")


def _build(raw: list[dict[str, Any]], request: str, max_tasks: int, repairs: list[str], form: str) -> ParseOutcome:
    tasks: list[Task] = []
    ids = [str(r.get("id", "")).strip() for r in raw]
    if any(not i for i in ids):
        ids = [str(i) for i in range(1, len(raw) + 1)]
        repairs.append("numbered tasks that had no id")
    ids = [_clean(i) for i in ids]
    untyped = [tid for r, tid in zip(raw, ids, strict=False) if not r.get("type")]
    for r, tid in zip(raw, ids, strict=False):
        desc = next((r[k] for k in _DESC_KEYS if isinstance(r.get(k), str) and r[k].strip()), "")
        desc = " ".join(_clean(desc).split())
        if len(desc) > MAX_DESCRIPTION_CHARS:
            desc = desc[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
            repairs.append(f"shortened task {tid!r} description")
        typ = _clean(str(r.get("type") or "general")).strip().lower()
        if typ not in TASK_TYPES:
            new = _TYPE_ALIASES.get(typ, "general")
            repairs.append(f"task {tid!r}: type {typ!r} read as {new!r}")
            typ = new
        deps_raw: Any = next((r[k] for k in _DEP_KEYS if k in r), [])
        if deps_raw is None:
            deps_raw = []
        if not isinstance(deps_raw, list):
            deps_raw = [d for d in re.split(r"[,\s]+", str(deps_raw)) if d]
        deps = tuple(dict.fromkeys(_clean(str(d)).strip() for d in deps_raw if str(d).strip()))
        tasks.append(Task(id=tid, description=desc, type=typ, depends_on=deps))
    tasks = _drop_repeats(tasks, repairs)
    dag = TaskDAG(tuple(tasks), request=request)
    problems = dag.problems(max_tasks=max_tasks)
    if problems:
        return ParseOutcome(None, form=form, repairs=repairs, problems=problems)
    meta = {"form": form, "repairs": list(repairs), "untyped": [t for t in untyped if t in dag.ids]}
    return ParseOutcome(dag.with_meta(**meta), form=form, repairs=repairs)


def _drop_repeats(tasks: list[Task], repairs: list[str]) -> list[Task]:
    """Small models loop ("2: Add a form / 3: Deploy / 4: Add a form / ..."): a task whose description
    repeats an earlier one is dropped, and its dependents inherit its dependencies (node contraction,
    which never creates a cycle)."""
    seen: set[str] = set()
    dropped: set[str] = set()
    ids = [t.id for t in tasks]
    for t in tasks:
        key = " ".join(t.description.lower().split()).rstrip(".")
        if key and key in seen and ids.count(t.id) == 1:
            dropped.add(t.id)
        seen.add(key)
    if not dropped:
        return tasks
    repairs.append(f"dropped {len(dropped)} task(s) repeating an earlier description")
    deps_of = {t.id: t.depends_on for t in tasks}

    def resolve(d: str, visiting: frozenset[str]) -> list[str]:
        if d not in dropped:
            return [d]
        if d in visiting:
            return []
        return [x for dd in deps_of.get(d, ()) for x in resolve(dd, visiting | {d})]

    out = []
    for t in tasks:
        if t.id in dropped:
            continue
        deps = tuple(dict.fromkeys(x for d in t.depends_on for x in resolve(d, frozenset()) if x != t.id))
        out.append(Task(id=t.id, description=t.description, type=t.type, depends_on=deps))
    return out


# ---- WorFBench text form -----------------------------------------------------------------------------
def _parse_worfbench(text: str, request: str, max_tasks: int) -> ParseOutcome:
    repairs: list[str] = []
    m = re.search(r"(?is)node[ \t]*:[ \t]*(.*?)(?:^[ \t]*edges?[ \t]*:|\Z)", text, re.M)
    node_block = m.group(1) if m else text
    nodes: dict[str, str] = {}
    for line in node_block.splitlines():
        nm = re.match(r"\s*(?:node\s*)?(\w+)\s*[:.)]\s*(.+)", line, re.I)
        if nm and nm.group(1).upper() not in ("START", "END", "EDGE", "EDGES"):
            if nm.group(1) in nodes:
                repairs.append(f"dropped duplicate node {nm.group(1)!r}")
                continue
            nodes[nm.group(1)] = nm.group(2).strip()
    if len(nodes) > max_tasks:
        return ParseOutcome(None, form="worfbench", problems=[f"too many tasks: {len(nodes)} > {max_tasks}"])
    em = re.search(r"(?is)edges?\s*:(.*)", text)
    deps: dict[str, list[str]] = {k: [] for k in nodes}
    if em:
        for a, b in re.findall(r"\(\s*(\w+)\s*,\s*(\w+)\s*\)", em.group(1)):
            if a.upper() == "START" or b.upper() == "END":
                continue
            if b not in deps or a not in nodes:
                repairs.append(f"dropped edge ({a},{b}) to an unknown node")
                continue
            if a not in deps[b]:
                deps[b].append(a)
    else:
        repairs.append("no Edge: line; read the nodes as a chain")
        keys = list(nodes)
        for prev, cur in itertools.pairwise(keys):
            deps[cur].append(prev)
    raw = [{"id": k, "description": v, "depends_on": deps[k]} for k, v in nodes.items()]  # WorFBench has no types
    return _build(raw, request, max_tasks, repairs, "worfbench")


# ---- numbered / bulleted list ------------------------------------------------------------------------
def _parse_list(text: str, request: str, max_tasks: int) -> ParseOutcome | None:
    items = []
    for line in text.splitlines():
        m = re.match(r"\s*(?:(?:step\s*)?\d+\s*[.):]|[-*•])\s+(.{3,})", line, re.I)
        if m:
            items.append(m.group(1).strip())
    if len(items) < 2:
        return None
    raw = [
        {"id": str(i), "description": d, "depends_on": [str(i - 1)] if i > 1 else []} for i, d in enumerate(items, 1)
    ]
    if len(raw) > max_tasks:
        return ParseOutcome(None, form="list", problems=[f"too many tasks: {len(raw)} > {max_tasks}"])
    return _build(raw, request, max_tasks, ["read a numbered list as a chain of steps"], "list")
