"""A graph run emits node spans, SICA / SE-Darwin spans and metrics per layer; reasoning and code tasks
take the SICA and SE-Darwin routes."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_ps.evaluators import CodeEvaluator, SandboxLimits
from genesis_ps.graph import build_graph
from genesis_ps.observability import metric_value as value
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

PLAN = json.dumps(
    {
        "tasks": [
            {"id": "1", "description": "Work out 2 + 2", "type": "reasoning", "depends_on": []},
            {"id": "2", "description": "Write add(a, b)", "type": "code", "depends_on": []},
            {"id": "3", "description": "Summarise", "type": "general", "depends_on": ["1", "2"]},
        ]
    }
)
CODE = "STRATEGY: use +\n```python\ndef add(a, b):\n    return a + b\n```"


def responder(prompt: Prompt) -> str:
    text = prompt.flat_text()
    if "Your task:" not in text:
        return PLAN
    if "Critique the proposed answer" in text:
        return "SCORE: 9\nVERDICT: PASS\nISSUES:\n- none"
    if "Write add(a, b)" in text:
        return CODE
    return "The answer is 4."




async def test_graph_run_with_power_sampling_enabled(spans: InMemorySpanExporter) -> None:
    env = {
        "POWER_SAMPLING_ENABLED": "1",
        "POWER_SAMPLING_SICA_ENABLED": "1",
        "POWER_SAMPLING_SE_DARWIN_ENABLED": "1",
        "POWER_SAMPLING_SICA_N_MCMC": "3",
        "POWER_SAMPLING_SE_DARWIN_N_MCMC": "3",
    }
    code_ev = CodeEvaluator("def test_add():\n    assert add(2, 3) == 5\n", limits=SandboxLimits(timeout_s=3.0))
    g = build_graph(ScriptedModel(responder), settings=Settings.from_env(env), evaluators={"code": code_ev})
    out = await g.ainvoke({"request": "Add numbers and explain"}, {"configurable": {"thread_id": "th-1"}})
    o = {t["id"]: t for t in out["tasks"]}
    assert o["1"]["route"] == "sica" and o["1"]["extra"]["sica"]["mode"] == "power"
    assert o["1"]["output"] == "The answer is 4." and o["1"]["score"] == pytest.approx(0.9)
    assert o["2"]["route"] == "se_darwin" and o["2"]["score"] == 1.0
    assert o["2"]["output"].startswith("def add") and o["2"]["extra"]["se_darwin"]["stop_reason"] == "target"
    assert o["3"]["route"] == "default"

    names = [s.name for s in spans.get_finished_spans()]
    for expected in (
        "genesis_ps.run",
        "genesis_ps.node.plan_prompt",
        "genesis_ps.node.sica_draft",
        "genesis_ps.node.sica_critique",
        "genesis_ps.node.darwin_population",
        "genesis_ps.node.darwin_evaluate",
        "genesis_ps.node.power_sample",
        "genesis_ps.power_sample",
    ):
        assert expected in names, expected
    # one trace per run: the run span is the root, every node span its child, sampling spans below those
    finished = spans.get_finished_spans()
    (run,) = [sp for sp in finished if sp.name == "genesis_ps.run"]
    assert run.parent is None and {sp.context.trace_id for sp in finished} == {run.context.trace_id}
    node_spans = [sp for sp in finished if sp.name.startswith("genesis_ps.node.")]
    assert node_spans and all(sp.parent is not None and sp.parent.span_id == run.context.span_id for sp in node_spans)
    assert run.attributes is not None and run.attributes["thread_id"] == "th-1"
    assert run.attributes["request_id"] == out["summary"]["request_id"] and run.attributes["done"] == 3
    assert all(sp.attributes is not None and sp.attributes["thread_id"] == "th-1" for sp in node_spans)
    by_id = {sp.context.span_id: sp for sp in finished}
    samples = [sp for sp in finished if sp.name == "genesis_ps.power_sample"]
    assert samples and all(by_id[sp.parent.span_id].name == "genesis_ps.node.power_sample" for sp in samples)
    layers = {
        s.attributes.get("layer")
        for s in spans.get_finished_spans()
        if s.name == "genesis_ps.power_sample" and s.attributes
    }
    assert {"sica", "se_darwin"} <= layers

    for node in ("plan_prompt", "plan_validate", "plan_done", "sica_draft", "darwin_population", "default_generate"):
        assert value("genesis_ps_graph_node_runs_total", node=node, status="ok") == 1, node
    assert value("genesis_ps_sampling_calls_total", layer="sica", method="mh", status="ok") == 1
    assert value("genesis_ps_generations_total", layer="se_darwin", outcome="power") == 1
    assert value("genesis_ps_quality_score_count", layer="se_darwin", evaluator="code") == 1
    assert value("genesis_ps_fallbacks_total", layer="htdag", reason="flag_off") >= 1  # htdag flag stayed off


async def test_graph_run_with_flags_off_counts_fallbacks(spans: InMemorySpanExporter) -> None:
    g = build_graph(ScriptedModel(responder), settings=Settings())
    out = await g.ainvoke({"request": "Add numbers and explain"})
    o = {t["id"]: t for t in out["tasks"]}
    assert o["1"]["extra"]["sica"]["mode"] == "iterative"
    assert o["2"]["fallbacks"] == ["flag_off"]  # the first candidate is a power request the flag refused
    assert o["2"]["score"] is None  # no evaluator for code: one candidate, left unscored (not 0)
    assert value("genesis_ps_fallbacks_total", layer="se_darwin", reason="flag_off") == 1
    assert value("genesis_ps_generations_total", layer="sica", outcome="single") >= 2  # draft + critique
    assert value("genesis_ps_sampling_calls_total", layer="sica", method="mh", status="ok") == 0


async def test_default_route_scores_are_recorded(spans: InMemorySpanExporter) -> None:
    from genesis_ps.evaluators import MathAnswerEvaluator

    g = build_graph(ScriptedModel(responder), settings=Settings(), evaluators={"general": MathAnswerEvaluator("4")})
    out = await g.ainvoke({"request": "Add numbers and explain"})
    assert out["tasks"][2]["score"] == 1.0
    assert value("genesis_ps_quality_score_count", layer="htdag", evaluator="math_answer") == 1
    assert value("genesis_ps_evaluations_total", evaluator="math_answer", status="ok") == 1
