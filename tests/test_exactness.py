"""The exactness benchmark: rows, the ablation's finding, and the ``genesis-ps bench exactness`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genesis_ps.bench.exactness import EFFORT_METHODS, ExactnessConfig, run_exactness, tokens_to_target
from genesis_ps.cli import main
from genesis_ps.errors import ConfigError


def test_rows_measure_tv_against_floor_and_low_temperature() -> None:
    cfg = ExactnessConfig(samples=400, alphas=(2.0,), toys=("eos",), methods=("mh", "mh_naive", "low_temp"), n_mcmc=20,
                          large_alphas=())  # fmt: skip
    rows = {r["method"]: r for r in run_exactness(cfg, seed=1)}
    assert set(rows) == {"mh", "mh_naive", "low_temp"}
    assert rows["low_temp"]["tokens_per_sample"] <= 5 < rows["mh"]["tokens_per_sample"]
    for r in rows.values():
        assert r["toy"] == "eos" and r["alpha"] == 2.0 and r["samples"] == 400
        assert r["within_target"] == (r["tv"] <= 1.5 * r["tv_noise_floor"] + 0.01)
        assert 0 < r["tv_noise_floor"] < 0.1
    assert rows["mh"]["within_target"]
    assert not rows["mh_naive"]["within_target"] and rows["mh_naive"]["tv"] > 0.2
    # i.i.d. low-temperature samples score about the exact low-temperature TV
    low = rows["low_temp"]
    assert low["tv"] == pytest.approx(low["tv_low_temperature"], abs=0.06 + 2 * low["tv_noise_floor"])
    assert rows["low_temp"]["tv_low_temperature"] > 0.2


def test_command_prints_json_and_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([
        "bench", "exactness", "--json", "--samples", "150", "--toy", "sharp", "--alpha", "2",
        "--method", "imh", "--method", "smc", "--method", "smc_anneal", "--method", "tps", "--method", "mh_entropy",
        "--method", "mh_adaptive", "--tps-rollouts", "2", "--no-large-alpha", "--no-effort",
        "--out", str(tmp_path), "--seed", "3",
    ])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in report["rows"]] == ["imh", "smc", "smc_anneal", "tps", "mh_entropy", "mh_adaptive"]
    assert set(report["rows"][0]) == {
        "section", "toy", "method", "alpha", "samples", "tv", "tv_noise_floor", "tv_low_temperature", "within_target",
        "tokens_per_sample", "unmixed_fraction", "rollouts", "seconds",
    }
    assert report["rows"][3]["rollouts"] == 2 and report["effort"] == []
    assert "--samples 150" in report["command"] and report["machine"]
    assert json.loads((tmp_path / "exactness.json").read_text()) == report
    md = (tmp_path / "exactness.md").read_text()
    assert "| sharp | imh | 2.0 | 150 |" in md


def test_large_alpha_and_effort_sections() -> None:
    cfg = ExactnessConfig(samples=300, alphas=(2.0,), toys=("eos",), methods=("mh",), large_alphas=(16.0,),
                          effort_grid=(2, 8, 30))  # fmt: skip
    rows = [r for r in run_exactness(cfg, seed=0) if r["section"] == "large_alpha"]
    by = {r["method"]: r for r in rows}
    assert set(by) == {"mh", "mh_cold", "smc", "smc_cold"} and all(r["toy"] == "trap" for r in rows)
    assert by["mh_cold"]["tv"] > 0.8 and by["mh_cold"]["unmixed_fraction"] > 0.9  # τ = 1/16 cannot mix
    assert by["mh"]["tv"] < 0.1 and by["mh"]["unmixed_fraction"] < 0.5
    effort = tokens_to_target(cfg, np.random.default_rng(0))
    assert [e["method"] for e in effort] == ["mh_full", "mh", "mh_entropy", "mh_change", "mh_differ", "mh_decision",
                                                "mh_decision_bt2"]
    for e in effort:
        assert e["trace"] and (e["tokens_to_target"] is None or e["tokens_to_target"] == e["trace"][-1][2])
        assert len(e["sweeps"]) == 1
    from genesis_ps.bench.exactness_report import markdown

    md = markdown({"rows": rows, "effort": effort, "command": "x", "machine": {}})
    assert "| eos | 2 |" in md and "mh: saving" in md and "mh_entropy: saving" in md and "mh_decision: saving" in md
    assert "mh_decision_bt2: saving" in md


def test_command_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "exactness", "--samples", "0"])
    assert main(["bench", "exactness", "--alpha", "-1", "--samples", "5", "--toy", "sharp", "--method", "imh"]) == 2
    assert "alpha" in capsys.readouterr().err


def test_effort_repeats_report_the_median_of_their_sweeps() -> None:
    cfg = ExactnessConfig(samples=300, alphas=(2.0,), toys=("eos",), effort_grid=(1, 4, 30), effort_repeats=3)
    effort = tokens_to_target(cfg, np.random.default_rng(2))
    assert len(effort) == len(EFFORT_METHODS)
    for e in effort:
        assert len(e["sweeps"]) == 3
        reached = [s["tokens_per_sample"] for s in e["sweeps"] if s is not None]
        if 2 * len(reached) > 3:
            assert e["tokens_to_target"] == pytest.approx(float(np.median(reached)), abs=0.01)
        else:
            assert e["tokens_to_target"] is None
    with pytest.raises(ConfigError) as err:
        ExactnessConfig(effort_repeats=0)
    assert err.value.param == "effort_repeats"


def test_effort_repeats_flag_reaches_the_command_the_sweeps_and_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["bench", "exactness", "--json", "--samples", "100", "--toy", "eos", "--alpha", "2", "--method", "mh",
               "--no-large-alpha", "--effort-repeats", "2", "--out", str(tmp_path), "--seed", "1"])  # fmt: skip
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert "--effort-repeats 2" in report["command"]
    assert report["effort"] and all(len(e["sweeps"]) == 2 for e in report["effort"])
    assert "median of 2 sweeps" in (tmp_path / "exactness.md").read_text()
    with pytest.raises(SystemExit):
        main(["bench", "exactness", "--effort-repeats", "0"])
