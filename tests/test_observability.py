"""Spans and Prometheus metrics appear for sampling runs; deploy files reference only exported metrics."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.generation import generate, power_sample, single_shot
from genesis_ps.observability import metric_value as value
from genesis_ps.sampling import SamplerParams
from genesis_ps.testing import ScriptedModel
from genesis_ps.testing.toys import eos_toy

ROOT = Path(__file__).resolve().parents[1]




async def test_power_sample_run_emits_span_blocks_and_metrics(spans: InMemorySpanExporter) -> None:
    params = SamplerParams(method="mh", alpha=2.0, n_mcmc=2, block_size=2, max_new_tokens=4, seed=3)
    with obs.layer_scope("sica"):
        result = await power_sample(eos_toy(), "x", params)
    finished = {s.name: s for s in spans.get_finished_spans()}
    run = finished["genesis_ps.power_sample"]
    assert run.attributes is not None
    assert run.attributes["alpha"] == 2.0 and run.attributes["n_mcmc"] == 2 and run.attributes["block_size"] == 2
    assert run.attributes["method"] == "mh" and run.attributes["provider"] == "toy"
    assert run.attributes["layer"] == "sica"
    assert run.attributes["tokens_generated"] == result.tokens_generated
    if result.acceptance_rate is not None:
        assert run.attributes["acceptance"] == pytest.approx(result.acceptance_rate)
    blocks = [s for s in spans.get_finished_spans() if s.name == "genesis_ps.power_sample.block"]
    assert blocks and all(b.parent is not None and b.parent.span_id == run.context.span_id for b in blocks)
    assert value("genesis_ps_sampling_calls_total", layer="sica", method="mh", status="ok") == 1
    assert value("genesis_ps_tokens_generated_total", layer="sica", method=result.method) == result.tokens_generated
    assert value("genesis_ps_cost_multiplier_sum", layer="sica", method=result.method) == pytest.approx(
        result.cost_multiplier
    )
    assert value("genesis_ps_sampling_latency_seconds_count", layer="sica", method="mh") == 1


async def test_fallback_is_counted_with_its_reason_and_on_the_span(spans: InMemorySpanExporter) -> None:
    model = ScriptedModel(["plain answer"], logprobs="none")
    with obs.layer_scope("se_darwin"):
        result = await generate(model, "q", SamplerParams(max_new_tokens=8), power=True)
    assert result.fallback == "no_logprobs"
    assert value("genesis_ps_fallbacks_total", layer="se_darwin", reason="no_logprobs") == 1
    assert value("genesis_ps_generations_total", layer="se_darwin", outcome="fallback") == 1
    assert (
        value("genesis_ps_sampling_calls_total", layer="se_darwin", method="mh", status="LogprobsUnsupportedError") == 1
    )
    assert value("genesis_ps_sampling_calls_total", layer="se_darwin", method="single", status="ok") == 1
    gen = next(s for s in spans.get_finished_spans() if s.name == "genesis_ps.generate")
    assert gen.attributes is not None and gen.attributes["fallback_reason"] == "no_logprobs"
    failed = next(s for s in spans.get_finished_spans() if s.name == "genesis_ps.power_sample")
    assert not failed.status.is_ok and failed.events  # the exception is recorded on the span


async def test_single_shot_counts_in_the_default_layer(spans: InMemorySpanExporter) -> None:
    await single_shot(ScriptedModel(["hi"]), "q", max_new_tokens=4)
    assert value("genesis_ps_sampling_calls_total", layer="direct", method="single", status="ok") == 1
    assert [s.name for s in spans.get_finished_spans()] == ["genesis_ps.single_shot"]


async def test_spans_are_noops_without_an_sdk() -> None:
    obs.configure_tracing(None)
    with obs.span("genesis_ps.test", alpha=1.0) as sp:
        obs.set_attributes(sp, x=1)
    assert obs.block_progress(sp, None) is None


def test_evaluations_and_nodes_are_recorded(spans: InMemorySpanExporter) -> None:
    obs.record_evaluation("code", 0.75, layer="se_darwin")
    obs.record_evaluation("code", None, layer="se_darwin")
    assert value("genesis_ps_quality_score_sum", layer="se_darwin", evaluator="code") == 0.75
    assert value("genesis_ps_evaluations_total", evaluator="code", status="failed") == 1
    with pytest.raises(RuntimeError), obs.node_span("decompose"):
        raise RuntimeError("node failed")
    assert value("genesis_ps_graph_node_runs_total", node="decompose", status="RuntimeError") == 1
    assert [s.name for s in spans.get_finished_spans()] == ["genesis_ps.node.decompose"]


def test_metrics_server_serves_the_registry(spans: InMemorySpanExporter) -> None:
    obs.record_evaluation("math_answer", 1.0)
    server, thread = obs.start_metrics_server(0, addr="127.0.0.1")
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert 'genesis_ps_quality_score_count{evaluator="math_answer",layer="direct"} 1.0' in body
    with pytest.raises(ConfigError, match="metrics_port"):
        obs.start_metrics_server(70000)


def _exported_families() -> set[str]:
    obs.reset_metrics()
    names = set()
    for family in obs.registry().collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def _referenced(expr: str) -> set[str]:
    found = set(re.findall(r"\bgenesis_ps_[a-z_]+", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in found}


def test_deploy_files_reference_only_exported_metrics() -> None:
    exported = _exported_families()
    assert exported == set(obs.METRIC_NAMES)
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())["groups"]
    exprs = [r["expr"] for g in rules for r in g["rules"]]
    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    referenced: set[str] = set().union(*(_referenced(e) for e in exprs))
    assert referenced, "the deploy files reference no metric at all"
    assert referenced <= exported, referenced - exported
    alerts = {r["alert"] for g in rules for r in g["rules"]}
    assert {"GenesisPsCostMultiplierHigh", "GenesisPsFallbackRateHigh", "GenesisPsQualityBelowBaseline"} <= alerts


def test_layer_scope_nests_and_restores() -> None:
    assert obs.current_layer() == "direct"
    with obs.layer_scope("htdag"):
        with obs.layer_scope("sica"):
            assert obs.current_layer() == "sica"
        assert obs.current_layer() == "htdag"
    assert obs.current_layer() == "direct"


def test_dashboard_and_alert_agree_on_which_fallbacks_count() -> None:
    """Configured decisions (flag_off, rollout, disabled) are not failures: the alert and the dashboard's
    fallback-rate panel leave out exactly the reasons observability.PLANNED_FALLBACKS names."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())["groups"]
    alert = next(r["expr"] for g in rules for r in g["rules"] if r["alert"] == "GenesisPsFallbackRateHigh")
    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    panel = next(t["expr"] for p in dash["panels"] if "fallback rate" in p["title"].lower() for t in p["targets"])
    planned = "|".join(obs.PLANNED_FALLBACKS)
    for expr in (alert, panel):
        assert re.findall(r'genesis_ps_fallbacks_total\{reason!~"([^"]+)"\}', expr) == [planned], expr
    assert "flag_off" in planned and "disabled" in planned
    assert any("genesis_ps_plan_fallbacks_total" in t["expr"] for p in dash["panels"] for t in p["targets"])


def test_plan_fallback_is_counted(spans: InMemorySpanExporter) -> None:
    from genesis_ps import build_graph
    from genesis_ps.graph import RouteRegistry
    from genesis_ps.settings import Settings

    g = build_graph(ScriptedModel(["no plan here, sorry"]), settings=Settings(), routes=RouteRegistry(builtin={}))
    out = g.invoke({"request": "Paint the fence, then wash the car"})
    assert out["summary"]["plan_fallback"] == "heuristic:unparseable"
    assert value("genesis_ps_plan_fallbacks_total", reason="unparseable") == 1
    assert value("genesis_ps_graph_node_runs_total", node="plan_heuristic", status="ok") == 1


def test_metrics_server_binds_loopback_by_default() -> None:
    import inspect

    assert inspect.signature(obs.start_metrics_server).parameters["addr"].default == "127.0.0.1"
