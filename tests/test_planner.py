"""decompose(): retries with feedback, heuristic fallback, recursion bounds, bad input, quality score."""

from __future__ import annotations

import json

import pytest

from genesis_ps.errors import ConfigError, ProviderConnectionError
from genesis_ps.evaluators.base import as_reward
from genesis_ps.planners import MAX_REQUEST_CHARS, decompose, heuristic_decompose
from genesis_ps.planners.quality import DecompositionEvaluator
from genesis_ps.sampling import Prompt, SamplerParams
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

GOOD = json.dumps(
    {
        "tasks": [
            {"id": "1", "description": "Write the landing page", "type": "writing", "depends_on": []},
            {"id": "2", "description": "Add a contact form with validation", "type": "code", "depends_on": []},
            {"id": "3", "description": "Deploy the site to a static host", "type": "general", "depends_on": ["1", "2"]},
        ]
    }
)


async def test_valid_output_is_used_and_scored() -> None:
    m = ScriptedModel([GOOD])
    d = await decompose("Build a small website and deploy it", m)
    assert d.fallback is None
    assert d.dag.ids == ["1", "2", "3"]
    assert d.quality is not None and d.quality.value is not None and d.quality.value > 0.9
    assert d.quality.details["source"] == "model"
    assert d.tokens_generated == d.generations[0].tokens_generated > 0
    assert d.cost_multiplier == pytest.approx(1.0)
    assert len(m.calls) == 1
    assert d.to_dict()["tasks"][2]["depends_on"] == ["1", "2"]


async def test_prose_is_retried_in_the_other_format_then_accepted() -> None:
    worf = "Node:\n1: Write the pages\n2: Deploy them\nEdge: (START,1) (1,2) (2,END)"
    m = ScriptedModel(["I would start by thinking about it.", worf])
    d = await decompose("Build a small website", m, max_attempts=2)
    assert d.fallback is None and d.dag.get("2").depends_on == ("1",)
    assert [a["style"] for a in d.attempts] == ["json", "worfbench"] and d.attempts[0]["problems"]
    assert "Node:" in m.calls[1].flat_text() and "JSON" not in m.calls[1].flat_text()


async def test_invalid_json_is_retried_with_feedback() -> None:
    cyc = json.dumps({"tasks": [{"id": "1", "description": "a b", "depends_on": ["2"]},
                                {"id": "2", "description": "c d", "depends_on": ["1"]}]})  # fmt: skip
    m = ScriptedModel([cyc, GOOD])
    d = await decompose("Build a small website", m, max_attempts=2)
    assert d.fallback is None and len(d.dag) == 3
    assert [a["style"] for a in d.attempts] == ["json", "json"]
    assert "previous answer was unusable: dependency cycle" in m.calls[1].flat_text()


async def test_every_attempt_failing_uses_the_heuristic_and_says_so() -> None:
    m = ScriptedModel(["no idea", '{"tasks": [{"id": "1", "description": "x y", "depends_on": ["1"]}]}'])
    d = await decompose("Write the pages, add a contact form, and deploy it", m, max_attempts=2)
    assert d.fallback == "heuristic:invalid"
    assert d.dag.is_valid and len(d.dag) >= 2
    assert d.quality is not None and d.quality.details["source"] == "heuristic"
    # the model's unusable output scores 0; the rule-based plan's own score is only a detail
    assert d.quality.value == 0.0 and d.quality.details["heuristic_plan_score"] > 0
    assert len(d.generations) == 2  # the spent generations are still counted


async def test_generation_failures_are_recorded_and_fall_back() -> None:
    m = ScriptedModel(fail_with=ProviderConnectionError("down", provider="scripted"))
    d = await decompose("Plan a trip", m, max_attempts=2)
    assert d.fallback == "heuristic:generation_failed:ProviderConnectionError"
    assert all("error" in a for a in d.attempts)
    assert d.dag.is_valid


@pytest.mark.parametrize("request_", ["", "   ", "x" * (MAX_REQUEST_CHARS + 1), None])
async def test_bad_requests_fail_before_model_work(request_: object) -> None:
    m = ScriptedModel([GOOD])
    with pytest.raises(ConfigError) as ei:
        await decompose(request_, m)  # type: ignore[arg-type]
    assert ei.value.param == "request"
    assert m.calls == []


async def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match="max_depth"):
        await decompose("ok", ScriptedModel([GOOD]), max_depth=-1)
    with pytest.raises(ConfigError, match="method"):
        await decompose("ok", ScriptedModel([GOOD]), method="beam")
    with pytest.raises(ConfigError, match="model"):
        await decompose("ok")


async def test_recursive_decomposition_is_bounded() -> None:
    long_task = "Research hosting options, compare their prices and limits, and then pick one for the site"
    top = json.dumps(
        {
            "tasks": [
                {"id": "1", "description": long_task, "depends_on": []},
                {"id": "2", "description": "Deploy the site", "depends_on": ["1"]},
            ]
        }
    )
    sub = json.dumps(
        {
            "tasks": [
                {"id": "a", "description": "List three static hosts", "depends_on": []},
                {"id": "b", "description": "Compare their prices", "depends_on": ["a"]},
            ]
        }
    )
    m = ScriptedModel(lambda p: sub if long_task in p.flat_text() else top)
    d = await decompose("Host my site", m, max_depth=2, max_total_tasks=5)
    assert d.fallback is None and d.depth_reached >= 1
    assert d.dag.get("2").depends_on == ("1.b",)
    assert len(d.dag) <= 5 and d.dag.is_valid
    flat = await decompose("Host my site", ScriptedModel(lambda p: sub if long_task in p.flat_text() else top))
    assert len(flat.dag) == 2  # max_depth=0 by default: no recursion


async def test_worfbench_style_prompt_and_answer() -> None:
    answer = "Node:\n1: Find the file\n2: Open it\nEdge: (START,1) (1,2) (2,END)"
    m = ScriptedModel([answer])
    d = await decompose("Open the report", m, style="worfbench")
    assert "Node:" in m.calls[0].flat_text()
    assert d.fallback is None and d.dag.get("2").depends_on == ("1",)


async def test_settings_decide_power_and_single_is_not_a_fallback() -> None:
    m = ScriptedModel([GOOD])
    d = await decompose("Build it", m, settings=Settings())  # flags off: single-shot, recorded
    assert d.generations[0].fallback == "flag_off"
    d2 = await decompose("Build it", ScriptedModel([GOOD]), params=SamplerParams(method="single"))
    assert d2.generations[0].fallback is None and d2.generations[0].method == "single"


async def test_power_sampled_decomposition_with_quality_tilt() -> None:
    m = ScriptedModel([GOOD])
    d = await decompose("Build it", m, params=SamplerParams(method="imh", n_mcmc=3, max_new_tokens=64, seed=1), lam=2.0)
    g = d.generations[0]
    assert g.fallback is None and g.method == "imh"
    assert g.tokens_generated > g.tokens_returned  # several proposals were sampled: measured cost > 1
    assert d.cost_multiplier == pytest.approx(g.tokens_generated / g.tokens_returned)


def test_quality_evaluator_orders_outputs_and_works_as_reward() -> None:
    ev = DecompositionEvaluator()
    good = ev.evaluate(GOOD, {"request": "Build a website"})
    one = ev.evaluate('{"tasks": [{"id": "1", "description": "Build a website"}]}', {"request": "Build a website"})
    junk = ev.evaluate("no plan here")
    assert good.value is not None and one.value is not None and junk.value == 0.0
    assert good.value > one.value > junk.value
    assert junk.details["structure"] == 0.0
    reward = as_reward(ev, {"request": "Build a website"})
    assert reward(GOOD) == good.value


def test_heuristic_always_valid() -> None:
    for req in ["x", "Do A. Then do B; and finally C", "Plan a small static website: write the pages, add a form"]:
        d = heuristic_decompose(req)
        assert d.is_valid and d.meta["form"] == "heuristic"


def test_prompt_is_short_with_one_example() -> None:
    from genesis_ps.planners import decomposition_prompt

    p = decomposition_prompt("Do a thing")
    assert isinstance(p, Prompt) and len(p.flat_text()) < 900
    assert [r for r, _ in p.messages] == ["system", "user", "assistant", "user"]


def test_heuristic_never_splits_inside_brackets_and_rules_type_untyped_tasks() -> None:
    from genesis_ps.planners import classify_types, parse_dag

    d = heuristic_decompose("Work out how much 17 + 25 is, then write a Python function add(a, b) that sums them.")
    assert [(t.type, t.description) for t in d.tasks] == [
        ("reasoning", "Work out how much 17 + 25 is"),
        ("code", "Write a Python function add(a, b) that sums them"),
    ]
    po = parse_dag("Node:\n1: Work out 2 + 2\n2: Write a Python function\nEdge: (START,1) (1,2) (2,END)")
    assert po.dag is not None and po.dag.meta["untyped"] == ["1", "2"]  # WorFBench lines carry no type
    typed, sources = classify_types(po.dag, po.dag.meta["untyped"])
    assert [t.type for t in typed.tasks] == ["reasoning", "code"] and sources == {"1": "rules", "2": "rules"}
    po = parse_dag('{"tasks": [{"id": "1", "description": "Write a Python function", "type": "general"}]}')
    assert po.dag is not None and classify_types(po.dag, po.dag.meta["untyped"])[1] == {"1": "model"}
