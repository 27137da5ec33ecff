"""``genesis-ps sample``'s flags for the new sampler options: validated, named, before any model loads;
and a toy model run through each of them."""

from __future__ import annotations

import json

import pytest

from genesis_ps.cli import main
from genesis_ps.testing.toys import eos_toy


def _no_model(*_a: object, **_k: object) -> object:
    raise AssertionError("the model must not load when the arguments are invalid")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(("argv", "name"), [
    (["--rollouts", "0"], "--rollouts"), (["--candidates", "0"], "--candidates"), (["--tries", "0"], "--tries"),
    (["--horizon", "0"], "--horizon"), (["--ramp-tokens", "-2"], "--ramp-tokens"),
    (["--decision-entropy", "-1"], "--decision-entropy"), (["--proposal-temperature", "0"], "--proposal-temperature"),
    (["--moves", "differ", "--change-at-cut", "0.5"], "--change-at-cut"),
    (["--moves", "decision", "--tries", "2"], "--moves"), (["--block-tries", "0"], "--block-tries"),
])  # fmt: skip
def test_bad_values_fail_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], name: str
) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", _no_model)
    assert main(["sample", "hi", *argv]) == 2
    assert name in capsys.readouterr().err


def test_an_unknown_move_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", _no_model)
    with pytest.raises(SystemExit) as e:
        main(["sample", "hi", "--moves", "sideways"])
    assert e.value.code == 2 and "--moves" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["--method", "mh", "--cuts", "entropy", "--tries", "2", "--adaptive"],
    ["--method", "mh", "--early-reject"],
    ["--method", "mh", "--cuts", "entropy", "--moves", "decision", "--early-reject"],
    ["--method", "mh", "--moves", "differ"],
    ["--method", "mh", "--cuts", "entropy", "--moves", "decision", "--block-tries", "3"],
    ["--method", "smc", "--resampler", "chopthin", "--ramp-tokens", "2", "--particles", "4"],
    ["--method", "smc", "--selection", "consensus", "--particles", "4"],
    ["--method", "tps", "--candidates", "2", "--rollouts", "2", "--horizon", "2", "--decision-entropy", "0"],
])  # fmt: skip
def test_each_option_runs_on_a_toy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                   argv: list[str]) -> None:  # fmt: skip
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: eos_toy())
    assert main(["sample", "hi", "--json", "--max-new-tokens", "4", "--block-size", "2", "--n-mcmc", "2",
                 "--seed", "1", *argv]) == 0  # fmt: skip
    rec = json.loads(capsys.readouterr().out)
    assert rec["method"] == argv[1] and rec["fallback"] is None and rec["tokens_generated"] >= rec["tokens_returned"]
    if "--moves" in argv:  # the flag reaches the sampler
        assert rec["extra"]["moves"] == argv[argv.index("--moves") + 1]
    if "--block-tries" in argv:
        assert rec["extra"]["block_tries"] == int(argv[argv.index("--block-tries") + 1])


def test_early_reject_reaches_the_sampler(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: eos_toy())
    base = ["sample", "hi", "--json", "--method", "mh", "--alpha", "2", "--max-new-tokens", "5", "--block-size", "2",
            "--n-mcmc", "6", "--seed", "2"]  # fmt: skip
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["extra"]["early_rejected"] == 0
    assert main([*base, "--early-reject"]) == 0
    assert json.loads(capsys.readouterr().out)["extra"]["early_rejected"] > 0


def test_no_reuse_rollouts_reaches_the_sampler(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: eos_toy())
    base = ["sample", "hi", "--json", "--method", "tps", "--max-new-tokens", "4", "--decision-entropy", "0.9",
            "--seed", "3"]  # fmt: skip
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["extra"]["reuse_rollouts"] is True
    assert main([*base, "--no-reuse-rollouts"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["extra"]["reuse_rollouts"] is False and rec["extra"]["reused_tokens"] == 0
