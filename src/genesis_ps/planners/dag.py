"""The task graph: :class:`Task`, :class:`TaskDAG`, validation, scheduling and updates.

A :class:`TaskDAG` is an immutable value. :meth:`TaskDAG.validate` lists *every* structural problem in
one :class:`~genesis_ps.errors.DAGValidationError`; the update methods (:meth:`TaskDAG.expand`,
:meth:`TaskDAG.insert`) return a new, re-validated DAG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from genesis_ps.errors import DAGValidationError

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_ID_CHARS",
    "MAX_TASKS",
    "TASK_TYPES",
    "Task",
    "TaskDAG",
    "find_cycle",
]

TASK_TYPES: tuple[str, ...] = ("general", "reasoning", "code", "research", "writing", "tool")
"""Task types the planner emits; ``reasoning`` and ``code`` have dedicated routes (SICA, SE-Darwin)."""
MAX_TASKS = 50
"""Upper bound on tasks in one DAG (a model that emits 10 000 tasks is refused, not scheduled)."""
MAX_DESCRIPTION_CHARS = 500
MAX_ID_CHARS = 32


@dataclass(frozen=True)
class Task:
    """One unit of work. ``depends_on`` lists ids that must finish first."""

    id: str
    description: str
    type: str = "general"
    depends_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "type": self.type, "depends_on": list(self.depends_on)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Task:
        return cls(
            id=str(d["id"]),
            description=str(d["description"]),
            type=str(d.get("type", "general")),
            depends_on=tuple(str(x) for x in d.get("depends_on", ())),
        )


@dataclass(frozen=True)
class TaskDAG:
    """Tasks in the order the planner gave them, plus where they came from."""

    tasks: tuple[Task, ...]
    request: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)
    done: frozenset[str] = field(default_factory=frozenset, compare=False)
    """Ids marked finished with :meth:`mark_done` (the graph keeps richer outcomes in its state)."""

    # ---- access -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    def get(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def dependents(self, task_id: str) -> list[str]:
        return [t.id for t in self.tasks if task_id in t.depends_on]

    def edges(self) -> list[tuple[str, str]]:
        """``(dependency, task)`` pairs."""
        return [(d, t.id) for t in self.tasks for d in t.depends_on]

    # ---- validation ---------------------------------------------------------------------------------
    def problems(self, *, max_tasks: int = MAX_TASKS) -> list[str]:
        """Every structural problem, in a stable order (empty when the DAG is valid)."""
        out: list[str] = []
        if not self.tasks:
            out.append("the task graph is empty")
        if len(self.tasks) > max_tasks:
            out.append(f"too many tasks: {len(self.tasks)} > {max_tasks}")
        seen: set[str] = set()
        for t in self.tasks:
            if not isinstance(t.id, str) or not t.id.strip():
                out.append("a task has an empty id")
            elif len(t.id) > MAX_ID_CHARS:
                out.append(f"task id {t.id[:MAX_ID_CHARS]!r}… is longer than {MAX_ID_CHARS} characters")
            if t.id in seen:
                out.append(f"duplicate task id {t.id!r}")
            seen.add(t.id)
            if not isinstance(t.description, str) or not t.description.strip():
                out.append(f"task {t.id!r} has an empty description")
            elif len(t.description) > MAX_DESCRIPTION_CHARS:
                out.append(f"task {t.id!r} description is longer than {MAX_DESCRIPTION_CHARS} characters")
            if t.type not in TASK_TYPES:
                out.append(f"task {t.id!r} has unknown type {t.type!r} (known: {', '.join(TASK_TYPES)})")
        ids = set(self.ids)
        for t in self.tasks:
            if t.id in t.depends_on:
                out.append(f"task {t.id!r} depends on itself")
            if len(set(t.depends_on)) != len(t.depends_on):
                out.append(f"task {t.id!r} lists a dependency twice")
            for d in t.depends_on:
                if d not in ids:
                    out.append(f"task {t.id!r} depends on unknown task {d!r}")
        cycle = find_cycle(self.tasks)
        if cycle:
            out.append("dependency cycle: " + " -> ".join(cycle))
        return out

    def validate(self, *, max_tasks: int = MAX_TASKS) -> TaskDAG:
        """Return ``self`` when valid; else raise :class:`DAGValidationError` listing every problem."""
        problems = self.problems(max_tasks=max_tasks)
        if problems:
            raise DAGValidationError(problems)
        return self

    @property
    def is_valid(self) -> bool:
        return not self.problems()

    # ---- scheduling ---------------------------------------------------------------------------------
    def ready(self, finished: Iterable[str] | None = None, *, excluded: Iterable[str] = ()) -> list[str]:
        """Ids whose dependencies are all in ``finished`` (default: those marked done), and that are
        neither finished nor excluded."""
        done, skip = set(self.done if finished is None else finished), set(excluded)
        return [t.id for t in self.tasks if t.id not in done and t.id not in skip and set(t.depends_on) <= done]

    def waves(self) -> list[list[str]]:
        """Topological levels: every task in a wave depends only on tasks of earlier waves."""
        self.validate()
        done: list[str] = []
        out: list[list[str]] = []
        while len(done) < len(self.tasks):
            wave = self.ready(done)
            out.append(wave)
            done.extend(wave)
        return out

    def topological_order(self) -> list[str]:
        return [i for wave in self.waves() for i in wave]

    def blocked_by_failure(self, failed: Iterable[str]) -> set[str]:
        """Every task downstream of a failed (or skipped) task: these are skipped, never run."""
        bad = set(failed)
        out: set[str] = set()
        frontier = list(bad)
        while frontier:
            cur = frontier.pop()
            for dep in self.dependents(cur):
                if dep not in out and dep not in bad:
                    out.add(dep)
                    frontier.append(dep)
        return out

    # ---- updates (each returns a new validated DAG) --------------------------------------------------
    def insert(self, task: Task, *, max_tasks: int = MAX_TASKS) -> TaskDAG:
        """Add one task (its dependencies must exist)."""
        return replace(self, tasks=(*self.tasks, task)).validate(max_tasks=max_tasks)

    def expand(self, task_id: str, subtasks: Sequence[Task], *, max_tasks: int = MAX_TASKS) -> TaskDAG:
        """Replace ``task_id`` by ``subtasks`` (ids local to the subgraph, rewritten ``<task_id>.<id>``).

        The subgraph's roots inherit the task's dependencies; tasks that depended on ``task_id`` depend
        on the subgraph's sinks instead.
        """
        parent = self.get(task_id)
        sub = TaskDAG(tuple(subtasks)).validate(max_tasks=max_tasks)
        prefix = f"{task_id}."
        local = {t.id: prefix + t.id for t in sub.tasks}
        new_sub = []
        for t in sub.tasks:
            deps = tuple(local[d] for d in t.depends_on) or parent.depends_on
            new_sub.append(Task(id=local[t.id], description=t.description, type=t.type, depends_on=deps))
        sinks = tuple(local[t.id] for t in sub.tasks if not sub.dependents(t.id))
        out: list[Task] = []
        for t in self.tasks:
            if t.id == task_id:
                out.extend(new_sub)
                continue
            if task_id in t.depends_on:
                deps = tuple(x for d in t.depends_on for x in (sinks if d == task_id else (d,)))
                t = replace(t, depends_on=tuple(dict.fromkeys(deps)))
            out.append(t)
        return replace(self, tasks=tuple(out)).validate(max_tasks=max_tasks)

    def mark_done(self, *task_ids: str) -> TaskDAG:
        """A copy with ``task_ids`` marked finished. Unknown ids, or a task whose dependencies are not
        all done, raise :class:`DAGValidationError`."""
        known = set(self.ids)
        done = set(self.done)
        problems = []
        for tid in task_ids:
            if tid not in known:
                problems.append(f"cannot mark unknown task {tid!r} done")
                continue
            missing = [d for d in self.get(tid).depends_on if d not in done and d not in task_ids]
            if missing:
                problems.append(f"task {tid!r} cannot be done before {', '.join(missing)}")
            done.add(tid)
        if problems:
            raise DAGValidationError(problems)
        return replace(self, done=frozenset(done))

    @property
    def pending(self) -> list[str]:
        return [t.id for t in self.tasks if t.id not in self.done]

    def with_meta(self, **meta: Any) -> TaskDAG:
        return replace(self, meta={**self.meta, **meta})

    # ---- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"tasks": [t.to_dict() for t in self.tasks]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, request: str = "") -> TaskDAG:
        """From ``{"tasks": [...]}`` (as :meth:`to_dict` writes it). Not a repairing parser: see
        :func:`genesis_ps.planners.parse_dag` for model output."""
        return cls(tuple(Task.from_dict(t) for t in d["tasks"]), request=request)

    def render_tree(self) -> str:
        """A readable outline: each task with its type and dependencies, in topological order."""
        order = self.topological_order() if self.is_valid else self.ids
        depth: dict[str, int] = {}
        lines = []
        for tid in order:
            t = self.get(tid)
            depth[tid] = 1 + max((depth.get(d, 0) for d in t.depends_on), default=-1)
            after = f"  (after {', '.join(t.depends_on)})" if t.depends_on else ""
            lines.append(f"{'  ' * depth[tid]}- [{t.id}] ({t.type}) {t.description}{after}")
        return "\n".join(lines)


def find_cycle(tasks: Sequence[Task]) -> list[str]:
    """One dependency cycle as a list of ids (first id repeated at the end), or [] if acyclic.
    Unknown dependencies and self-dependencies are ignored here (they are reported separately)."""
    deps = {t.id: [d for d in t.depends_on if d != t.id] for t in tasks}  # self-loops reported apart
    color: dict[str, int] = {}
    for start in deps:
        if color.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = 1
                path.append(node)
            nxt = deps.get(node, [])
            if i < len(nxt):
                stack.append((node, i + 1))
                child = nxt[i]
                if child not in deps:
                    continue
                if color.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if not color.get(child):
                    stack.append((child, 0))
            else:
                color[node] = 2
                path.pop()
    return []
