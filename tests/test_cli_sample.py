"""``genesis-ps sample``: a real run on the embedded model (in process and as a subprocess), validation
before the model loads, and the recorded fallback for a provider without log-probs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

from genesis_ps.cli import main
from genesis_ps.testing import ScriptedModel

FIELDS = ("text", "method", "alpha", "tokens_generated", "tokens_returned", "cost_multiplier", "acceptance_rate",
          "latency_s", "fallback", "model", "provider", "seed")


def _no_model(*_a: object, **_k: object) -> object:
    raise AssertionError("the model must not load when the arguments are invalid")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(k)


def test_sample_json_on_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    rc = main(["sample", "Name a colour.", "--method", "mh", "--alpha", "4", "--block-size", "4",
               "--max-new-tokens", "8", "--n-mcmc", "1", "--seed", "3", "--json"])
    assert rc == 0
    rec = json.loads(capsys.readouterr().out)
    for f in FIELDS:
        assert f in rec, f
    assert rec["method"] == "mh" and rec["provider"] == "embedded" and rec["fallback"] is None
    assert rec["alpha"] == 4.0 and rec["seed"] == 3
    assert 1 <= rec["tokens_returned"] <= 8
    assert rec["tokens_generated"] >= rec["tokens_returned"] + 1  # two proposals were made and counted
    assert rec["cost_multiplier"] == pytest.approx(rec["tokens_generated"] / rec["tokens_returned"], abs=1e-3)
    assert rec["acceptance_rate"] is not None and 0.0 <= rec["acceptance_rate"] <= 1.0


def test_sample_human_output_single(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    rc = main(["sample", "Say hello.", "--method", "single", "--temperature", "0", "--max-new-tokens", "6"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "result record" in out and "single" in out


def test_env_defaults_and_flag_overrides(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: ScriptedModel(["fine"]))
    monkeypatch.setenv("POWER_SAMPLING_ALPHA", "2.5")
    monkeypatch.setenv("POWER_SAMPLING_METHOD", "imh")
    assert main(["sample", "hi", "--n-mcmc", "2", "--seed", "1", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["alpha"] == 2.5 and rec["method"] == "imh" and rec["provider"] == "scripted"
    assert main(["sample", "hi", "--alpha", "3", "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["alpha"] == 3.0


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["--alpha", "-1"], "--alpha"),
        (["--n-mcmc", "0"], "--n-mcmc"),
        (["--particles", "0"], "--particles"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--temperature", "-0.5"], "temperature"),
        (["--provider", "local"], "--model"),
    ],
)
def test_invalid_values_exit_2_before_the_model_loads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], name: str
) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", _no_model)
    assert main(["sample", "hi", *argv]) == 2
    assert name in capsys.readouterr().err


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", _no_model)
    monkeypatch.setenv("POWER_SAMPLING_ALPHA", "lots")
    assert main(["sample", "hi"]) == 2
    assert "POWER_SAMPLING_ALPHA" in capsys.readouterr().err


def test_provider_without_logprobs_falls_back_visibly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "genesis_ps.providers.registry.build_model", lambda *a, **k: ScriptedModel(["plain"], logprobs="none")
    )
    assert main(["sample", "hi", "--method", "mh", "--seed", "2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["text"] == "plain" and rec["method"] == "single"
    assert rec["fallback"] == "no_logprobs" and rec["requested_method"] == "mh"


@pytest.mark.slow
def test_sample_subprocess_prints_one_json_object() -> None:
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWER_SAMPLING_")}
    out = subprocess.run(
        [sys.executable, "-m", "genesis_ps", "sample", "Name a fruit.", "--method", "smc", "--particles", "2",
         "--block-size", "4", "--max-new-tokens", "8", "--seed", "4", "--json"],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads(out.stdout)
    assert rec["method"] == "smc" and rec["fallback"] is None and rec["seed"] == 4
    assert rec["tokens_generated"] >= rec["tokens_returned"] >= 1
    assert "Converting" not in out.stderr  # the GGUF conversion's progress bar is silenced


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--alpha", "0"], ["--n-mcmc", "0"], ["--threads", "0"],
                                  ["--loglik-prompts", "-1"], ["--loglik-tokens", "0"]])
def test_bench_speed_validates_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setattr("genesis_ps.providers.local.embedded.load_embedded", _no_model)
    assert main(["bench", "speed", *argv]) == 2
    assert argv[0].lstrip("-").replace("-", "_") in capsys.readouterr().err.replace("-", "_")


def test_bench_speed_json_on_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from genesis_ps.providers.local import blockmm

    argv = ["bench", "speed", "--json", "--max-new-tokens", "8", "--block-size", "4", "--n-mcmc", "1",
            "--particles", "2", "--seed", "1", "--loglik-prompts", "2", "--loglik-tokens", "6", "--repeats", "2"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("single_s", "mh_s", "mh_reference_style_s", "smc_s", "decode_tok_s", "generate_tok_s", "tokens"):
        assert key in report
    assert set(report["ratios"]) >= {"decode_speedup_vs_generate", "mh_speedup_vs_reference_style",
                                     "mh_per_token_vs_single", "smc_vs_single", "tps_vs_single",
                                     "mh_entropy_time_to_mh_loglik", "smc_kv_peak_cow_vs_no_cow"}
    assert all(v > 0 for v in report["ratios"].values() if v is not None)
    assert set(report["rows"]) == {"single", "mh", "mh_early", "mh_entropy", "mh_decision", "mh_decision_bt2",
                                   "mh_adaptive", "tps", "tps_fresh", "smc_no_cow", "smc"}  # fmt: skip
    assert report["rows"]["tps"]["extra"]["reuse_rollouts"]
    assert not report["rows"]["tps_fresh"]["extra"]["reuse_rollouts"]
    for name, row in report["rows"].items():
        assert row["wall_s"] > 0 and row["tokens_generated"] > 0 and row["ms_per_token"] > 0, name
    assert report["rows"]["mh_entropy"]["extra"]["cuts"] == "entropy"
    assert report["rows"]["mh_decision"]["extra"]["moves"] == "decision"
    assert report["rows"]["mh_decision_bt2"]["extra"]["block_tries"] == 2
    ll = report["loglik"]
    assert ll["prompts"] == 2 and ll["mh_entropy_trace"] and ll["mh_mean_loglik"] < 0
    assert (ll["ratio"] is None) == (ll["mh_entropy_reached"] is None) == (ll["paired_wall_s"] is None)
    if ll["paired_wall_s"] is not None:  # the reached configuration timed again beside today's MH
        walls = ll["paired_wall_s"]
        assert ll["ratio"] == pytest.approx(walls["mh_entropy"] / walls["mh"])
        assert ll["search_ratio"] == pytest.approx(ll["mh_entropy_reached"]["wall_s"] / ll["mh_wall_s"])
    from genesis_ps.bench.speed_power import SEARCH

    searched = [(t["n_mcmc"], t["n_tries"], t["moves"], t["block_tries"]) for t in ll["mh_entropy_trace"]]
    want = [(s, t, moves, bt) for s in (1, 2) for moves, t, bt in SEARCH]
    assert searched == want[: len(searched)]  # in order of rising cost
    if ll["mh_entropy_reached"] is not None:
        diff = ll["mh_entropy_reached"]["difference"]
        assert diff["ci"][0] <= diff["mean"] <= diff["ci"][1]
        assert diff["mean"] == pytest.approx(ll["mh_entropy_reached"]["mean_loglik"] - ll["mh_mean_loglik"])
    tl = report["tps_loglik"]  # single-shot, TPS and TPS without reuse on the same prompts, paired
    assert tl["prompts"] == 2 and all(len(tl[k]["per_prompt"]) == 2 for k in ("single", "tps", "tps_fresh"))
    for a, b in (("tps", "single"), ("tps", "tps_fresh")):
        d = tl[f"{a}_minus_{b}"]
        assert d["ci"][0] <= d["mean"] <= d["ci"][1]
        assert d["mean"] == pytest.approx(tl[a]["mean_loglik"] - tl[b]["mean_loglik"])
    assert report["ratios"]["tps_wall_vs_single_over_prompts"] == pytest.approx(
        tl["tps"]["wall_s"] / tl["single"]["wall_s"])
    assert report["tokens"]["smc"] >= report["smc_tokens_returned"] > 0
    assert report["tokens"]["mh"] > 0 and report["tokens"]["single"] > 0
    paired = report["paired_with_single"]  # the targeted ratios: medians of rounds paired with single-shot
    assert len(paired["single_s"]) == 2 and set(paired["ratios"]) == {"smc", "smc_no_cow", "tps", "tps_fresh"}
    for name, key in (("smc", "smc_vs_single"), ("smc_no_cow", "smc_no_cow_vs_single"), ("tps", "tps_vs_single"),
                      ("tps_fresh", "tps_fresh_vs_single")):
        assert len(paired["ratios"][name]) == 2
        assert report["ratios"][key] == pytest.approx(statistics.median(paired["ratios"][name]))
    blocks = report["settings"]["block_weight_matrices"]
    if blockmm.library() is not None:
        assert blocks == 211 and report["decode_fp32_weights_tok_s"] > 0
        assert report["settings"]["block_kernel_unavailable"] is None
    else:
        assert blocks == 0 and report["decode_fp32_weights_tok_s"] is None
        assert report["settings"]["block_kernel_unavailable"]
