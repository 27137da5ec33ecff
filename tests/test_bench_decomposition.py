"""The decomposition benchmark end to end: scripted model (exact expectations) and an embedded-model smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesis_ps.bench.decomposition import DecompositionConfig, dag_to_workflow, run_decomposition
from genesis_ps.bench.decomposition_report import markdown
from genesis_ps.bench.methods import parse_methods
from genesis_ps.bench.worfbench_load import load_records
from genesis_ps.errors import ConfigError, ProviderServerError
from genesis_ps.planners.parse import parse_dag
from genesis_ps.testing import ScriptedModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "worfbench"
GOLD = "Node:\n1: open the terminal\n2: list the files\n3: count the lines\nEdge: (START,1) (1,2) (2,3) (3,END)"


def _record(i: int, task: str) -> dict[str, object]:
    return {
        "id": f"r{i}",
        "source": "toy",
        "conversations": [
            {"role": "system", "content": "You are a helpful task planner."},
            {"role": "user", "content": task},
            {"role": "assistant", "content": GOLD},
        ],
    }


@pytest.fixture
def toy_data(tmp_path: Path) -> Path:
    d = tmp_path / "wb"
    d.mkdir()
    recs = [
        _record(0, "count lines of the files"),
        _record(1, "count the files again"),
        {"id": "bad", "conversations": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "no"}]},
    ]
    (d / "toy.json").write_text(json.dumps(recs))
    return d


def _cfg(data: Path, out: Path | None, methods: str = "single,greedy") -> DecompositionConfig:
    return DecompositionConfig(
        data=str(data), limit=5, methods=parse_methods(methods, tilt=True), matcher="lexical",
        out=str(out) if out else None,
    )


async def test_gold_answers_score_one_and_reports_are_written(toy_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rep = await run_decomposition(_cfg(toy_data, out), ScriptedModel([GOLD]))
    for m in ("single", "greedy"):
        a = rep["methods"][m]
        assert a["n"] == 2 and a["f1_chain"]["mean"] == 1.0 and a["f1_graph"]["mean"] == 1.0 and a["parse_rate"] == 1.0
    assert [s["id"] for s in rep["skipped_records"]] == ["bad"]
    assert {Path(f).name for f in rep["files"]} == {
        "report.json", "report.md", "quality_vs_cost.png", "per_domain.png", "f1_vs_tokens.png",
    }
    lines = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert [x.get("kind") for x in lines] == ["header", None, None, None, None, "footer"]
    assert lines[1]["f1_graph"] == 1.0
    assert "f1_chain" in (out / "report.md").read_text()
    assert (out / "quality_vs_cost.png").read_bytes()[:4] == b"\x89PNG"


async def test_unusable_output_scores_zero_and_is_recorded(toy_data: Path) -> None:
    rep = await run_decomposition(_cfg(toy_data, None, "single"), ScriptedModel(["I do not know."]))
    a = rep["methods"]["single"]
    assert a["parse_rate"] == 0.0 and a["f1_chain"]["mean"] == 0.0 and a["f1_graph"]["mean"] == 0.0
    assert a["quality"] == 0.0  # the heuristic fallback DAG is not credited to the model
    assert all(r["fallback"] and r["fallback"].startswith("heuristic:") for r in rep["rows"])


async def test_partial_credit_in_json_form(toy_data: Path) -> None:
    # two of three gold steps, in our JSON form: recall 2/3, precision 1
    js = (
        '{"tasks": [{"id": "1", "description": "open the terminal", "depends_on": []}, '
        '{"id": "2", "description": "list the files", "depends_on": ["1"]}]}'
    )
    rep = await run_decomposition(_cfg(toy_data, None, "single"), ScriptedModel([js]))
    a = rep["methods"]["single"]
    assert a["f1_chain"]["mean"] == pytest.approx(0.8) and a["f1_graph"]["mean"] == pytest.approx(0.8)
    assert a["strict_worfbench_parse_rate"] == 0.0 and a["parse_rate"] == 1.0


async def test_provider_failure_midway_does_not_crash(toy_data: Path) -> None:
    model = ScriptedModel(fail_with=ProviderServerError("boom", provider="scripted"))
    rep = await run_decomposition(_cfg(toy_data, None, "single"), model)
    assert rep["methods"]["single"]["n"] == 2 and rep["methods"]["single"]["parse_rate"] == 0.0


async def test_power_methods_without_logprobs_are_skipped_with_the_reason(toy_data: Path) -> None:
    model = ScriptedModel([GOLD], logprobs="none")
    rep = await run_decomposition(_cfg(toy_data, None, "single,power-mh,power-mh-tilt,bon"), model)
    assert set(rep["methods"]) == {"single"} and rep["methods"]["single"]["f1_graph"]["mean"] == 1.0
    assert [s["method"] for s in rep["skipped_methods"]] == ["power-mh", "power-mh-tilt", "bon"]
    assert all("no log-probabilities" in s["reason"] for s in rep["skipped_methods"])
    assert "Skipped method power-mh: scripted/scripted returns no log-probabilities" in markdown(rep)
    with pytest.raises(ConfigError, match="methods"):  # nothing left to run
        await run_decomposition(_cfg(toy_data, None, "power-mh"), model)
    assert len(model.calls) == 2  # single on the two records; the power methods never called the model


async def test_bad_selection_is_a_config_error(toy_data: Path) -> None:
    with pytest.raises(ConfigError, match="domains"):
        await run_decomposition(DecompositionConfig(data=str(toy_data), domains=["nope"]), ScriptedModel())
    with pytest.raises(ConfigError, match="methods"):
        parse_methods("single,beam")


def test_dag_to_workflow_keeps_order_and_edges() -> None:
    dag = parse_dag(GOLD).dag
    assert dag is not None
    wf = dag_to_workflow(dag)
    assert wf.nodes == ("open the terminal", "list the files", "count the lines") and wf.edges == ((0, 1), (1, 2))


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="shared WorFBench data not present")
def test_cli_smoke_on_embedded_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genesis_ps.cli import main

    pytest.importorskip("transformers")
    rc = main(
        [
            "bench",
            "decomposition",
            "--data",
            str(DATA),
            "--domains",
            "os",
            "--limit",
            "2",
            "--methods",
            "single,power-mh",
            "--n-mcmc",
            "1",
            "--block-size",
            "16",
            "--max-new-tokens",
            "32",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["methods"]) == {"single", "power-mh"}
    for a in rep["methods"].values():
        assert a["n"] == 2 and 0.0 <= a["f1_chain"]["mean"] <= 1.0 and 0.0 <= a["f1_graph"]["mean"] <= 1.0
    assert rep["methods"]["single"]["cost_multiplier"] == 1.0
    assert rep["methods"]["power-mh"]["cost_multiplier"] > 1.0  # measured: MH proposals cost extra tokens
    assert (tmp_path / "per_domain.png").is_file() and len(load_records(DATA, ["os"], 2).records) == 2


def test_cli_bad_arguments_fail_before_the_model_loads(toy_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genesis_ps.cli import main

    assert main(["bench", "decomposition", "--data", str(toy_data), "--domains", "nope"]) == 2
    assert "domains" in capsys.readouterr().err
    assert main(["bench", "decomposition", "--data", str(toy_data), "--methods", "beam"]) == 2
    assert "methods" in capsys.readouterr().err
    assert main(["bench", "quality", "--kind", "mul9"]) == 2
    assert "kind" in capsys.readouterr().err


async def test_compute_matched_baselines_per_record(toy_data: Path) -> None:
    rep = await run_decomposition(_cfg(toy_data, None, "single,power-mh,bon,self_consistency"), ScriptedModel([GOLD]))
    ms = rep["methods"]
    assert set(ms) == {"single", "power-mh", "bon[power-mh]", "self_consistency[power-mh]"}
    # the scripted model's power-mh is imh over n_mcmc + 1 = 3 proposals: the baselines draw as many tokens
    assert ms["bon[power-mh]"]["tokens_generated_mean"] == ms["power-mh"]["tokens_generated_mean"]
    assert ms["self_consistency[power-mh]"]["f1_graph"]["mean"] == 1.0
    assert {c["a"] for c in rep["matched_comparisons"]} == {"bon[power-mh]", "self_consistency[power-mh]"}
    with pytest.raises(ConfigError):
        await run_decomposition(_cfg(toy_data, None, "single,bon"), ScriptedModel([GOLD]))
