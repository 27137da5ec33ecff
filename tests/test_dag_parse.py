"""TaskDAG validation, scheduling and updates; parse_dag on good, repaired and malformed outputs
(property tests: never an unhandled exception, every accepted DAG valid)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis_ps.errors import DAGValidationError
from genesis_ps.planners import MAX_TASKS, Task, TaskDAG, parse_dag


def dag(*specs: tuple[str, tuple[str, ...]]) -> TaskDAG:
    return TaskDAG(tuple(Task(id=i, description=f"do step {i}", depends_on=d) for i, d in specs))


def test_validation_lists_every_problem() -> None:
    bad = TaskDAG(
        (
            Task(id="1", description="a b", depends_on=("1",)),
            Task(id="2", description="", depends_on=("9",)),
            Task(id="2", description="dup id", type="weird"),
            Task(id="3", description="x y", depends_on=("4",)),
            Task(id="4", description="x y", depends_on=("3",)),
        )
    )
    with pytest.raises(DAGValidationError) as ei:
        bad.validate()
    msg = " | ".join(ei.value.problems)
    for needle in (
        "depends on itself",
        "empty description",
        "unknown task '9'",
        "duplicate task id '2'",
        "unknown type 'weird'",
        "dependency cycle",
    ):
        assert needle in msg, needle
    assert TaskDAG(()).problems() == ["the task graph is empty"]
    big = TaskDAG(tuple(Task(id=str(i), description="a task") for i in range(MAX_TASKS + 1)))
    assert any("too many tasks" in p for p in big.problems())


def test_waves_blocking_and_expand() -> None:
    d = dag(("a", ()), ("b", ()), ("c", ("a", "b")), ("d", ("c",)), ("e", ("a",)))
    assert d.waves() == [["a", "b"], ["c", "e"], ["d"]]
    assert d.blocked_by_failure(["a"]) == {"c", "d", "e"}
    assert d.ready(["a"]) == ["b", "e"]
    sub = [Task(id="1", description="first half"), Task(id="2", description="second half", depends_on=("1",))]
    e = d.expand("c", sub)
    assert e.get("c.1").depends_on == ("a", "b")
    assert e.get("d").depends_on == ("c.2",)
    assert "c" not in e.ids and e.is_valid
    with pytest.raises(DAGValidationError):
        d.insert(Task(id="z", description="needs ghost", depends_on=("ghost",)))
    assert d.insert(Task(id="z", description="after d", depends_on=("d",))).waves()[-1] == ["z"]
    progressed = d.mark_done("a", "b")
    assert progressed.ready() == ["c", "e"] and progressed.pending == ["c", "d", "e"]
    with pytest.raises(DAGValidationError, match="cannot be done before"):
        d.mark_done("d")
    with pytest.raises(DAGValidationError, match="unknown"):
        d.mark_done("zz")
    back = TaskDAG.from_dict(json.loads(json.dumps(e.to_dict())))
    assert back.tasks == e.tasks
    assert "[c.1]" in e.render_tree()


@pytest.mark.parametrize(
    ("text", "form", "repair"),
    [
        ('{"tasks": [{"id": "1", "description": "write code", "type": "code", "depends_on": []}]}', "json", None),
        (
            "Sure:\n```json\n{'tasks': [{'id': 1, 'description': 'a b c', 'depends_on': [],},]}\n```",
            "json",
            "converted single quotes",
        ),
        (
            '{tasks: [{id: "1", description: "one two"}, {id: "2", description: "three four", depends_on: ["1"]}]}',
            "json",
            "quoted bare keys",
        ),
        (
            '{"tasks": [{"id": "1", "description": "first step"}, {"id": "2", "description": "sec',
            "json",
            "closed truncated JSON",
        ),
        (
            '[{"id": 1, "task": "boil water", "type": "cooking"}, {"id": 2, "task": "pour it", "deps": "1"}]',
            "json",
            "read as 'general'",
        ),
        (
            "Node:\n1: Boil water\n2: Get a cup\n3: Pour\nEdge: (START,1) (START,2) (1,3) (2,3) (3,END)",
            "worfbench",
            None,
        ),
        ("Plan:\n1. Buy flour\n2. Bake bread\n3. Slice it", "list", "numbered list"),
    ],
)
def test_parse_forms_and_recorded_repairs(text: str, form: str, repair: str | None) -> None:
    out = parse_dag(text)
    assert out.ok, out.problems
    assert out.form == form
    assert out.dag is not None and out.dag.is_valid
    if repair:
        assert any(repair in r for r in out.repairs), out.repairs
    else:
        assert not [r for r in out.repairs if "fence" not in r]


def test_worfbench_edges_become_dependencies() -> None:
    out = parse_dag("Node:\n1: Boil water\n2: Get a cup\n3: Pour\nEdge: (START,1) (START,2) (1,3) (2,3) (3,END)")
    assert out.dag is not None
    assert out.dag.get("3").depends_on == ("1", "2")
    assert out.dag.get("1").depends_on == ()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("I think you should just do it yourself.", "no JSON"),
        (
            '{"tasks": [{"id": "1", "description": "loop", "depends_on": ["2"]}, '
            '{"id": "2", "description": "back", "depends_on": ["1"]}]}',
            "cycle",
        ),
        ('{"tasks": [{"id": "1", "description": "me", "depends_on": ["1"]}]}', "itself"),
        ('{"tasks": [{"id": "1", "description": "a b", "depends_on": ["7"]}]}', "unknown task"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        (json.dumps({"tasks": [{"id": str(i), "description": f"t{i}"} for i in range(10_000)]}), "too"),
        (json.dumps({"tasks": [{"id": str(i), "description": f"t{i}"} for i in range(60)]}), "too many tasks"),
    ],
)
def test_malformed_outputs_are_refused_with_reasons(text: str, needle: str) -> None:
    out = parse_dag(text)
    assert not out.ok
    assert any(needle in p for p in out.problems), out.problems


def test_non_text_input_is_a_problem_not_a_crash() -> None:
    assert not parse_dag(None).ok  # type: ignore[arg-type]
    assert not parse_dag(12).ok  # type: ignore[arg-type]


# ---- properties -----------------------------------------------------------------------------------
ids = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=4)
words = st.lists(
    st.sampled_from(["write", "the", "code", "test", "deploy", "plan", "it", "réglage", "数据"]), min_size=0, max_size=6
).map(" ".join)


@st.composite
def raw_tasks(draw: st.DrawFn) -> list[dict[str, object]]:
    n = draw(st.integers(0, 8))
    tids = draw(st.lists(ids, min_size=n, max_size=n))
    out = []
    for i, tid in enumerate(tids):
        deps = draw(st.lists(st.sampled_from([*tids, "ghost"]) if tids else st.just("ghost"), max_size=3))
        item: dict[str, object] = {
            "id": draw(st.sampled_from([tid, i + 1])),
            "description": draw(words),
            "depends_on": deps,
        }
        if draw(st.booleans()):
            item["type"] = draw(st.sampled_from(["code", "reasoning", "general", "math", "???", ""]))
        out.append(item)
    return out


def corrupt(text: str, how: int, cut: float) -> str:
    if how == 0:
        return text
    if how == 1:
        return text[: int(len(text) * cut)]
    if how == 2:
        return text.replace('"', "'")
    if how == 3:
        return text.replace("]", ",]").replace("}", ",}")
    if how == 4:
        return f"Here is the plan:\n```json\n{text}\n```\nHope it helps!"
    return text.replace('"id"', "id").replace('"description"', "description")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_tasks(), st.integers(0, 5), st.floats(0.0, 1.0), st.booleans())
def test_parse_never_crashes_and_accepts_only_valid_dags(
    tasks: list[dict[str, object]], how: int, cut: float, wrap: bool
) -> None:
    text = json.dumps({"tasks": tasks} if wrap else tasks)
    out = parse_dag(corrupt(text, how, cut))
    if out.ok:
        assert out.dag is not None and out.dag.problems() == []
    else:
        assert out.problems


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_arbitrary_text(text: str) -> None:
    out = parse_dag(text)
    assert out.ok == (out.dag is not None)
    if out.dag is not None:
        assert out.dag.is_valid
    else:
        assert out.problems


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.data())
def test_valid_dags_round_trip_through_json(n: int, data: st.DataObject) -> None:
    tasks = []
    for i in range(n):
        deps = data.draw(st.lists(st.sampled_from([str(j) for j in range(i)]), unique=True, max_size=3)) if i else []
        tasks.append(Task(id=str(i), description=f"task number {i}", type="general", depends_on=tuple(deps)))
    d = TaskDAG(tuple(tasks)).validate()
    out = parse_dag(json.dumps(d.to_dict()))
    assert out.dag is not None and out.dag.tasks == d.tasks and out.repairs == []
    flat = sum(len(w) for w in d.waves())
    assert flat == n


def test_repeated_nodes_from_a_looping_model_are_contracted() -> None:
    looping = "Node:\n1: Make a page\n2: Add a form\n3: Make a page\n4: Deploy\n5: Add a form\n6:"
    out = parse_dag(looping)
    assert out.dag is not None and [t.description for t in out.dag.tasks] == ["Make a page", "Add a form", "Deploy"]
    assert any("repeating an earlier description" in r for r in out.repairs)
    out = parse_dag("Node:\n1: A b\n2: C d\n3: A b\n4: E f\nEdge: (START,1) (1,2) (2,3) (3,4) (4,END)")
    assert out.dag is not None and out.dag.get("4").depends_on == ("2",)  # inherits the dropped node's deps
