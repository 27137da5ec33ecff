"""``genesis-ps decompose`` and ``genesis-ps run``: output shapes, checkpoints, --resume, bad input; and one
end-to-end ``run`` on the embedded model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import genesis_ps.cli.common as cli_common
from genesis_ps.cli import main
from genesis_ps.errors import ProviderConnectionError
from genesis_ps.sampling import Prompt
from genesis_ps.testing import ScriptedModel

PLAN = json.dumps(
    {
        "tasks": [
            {"id": "1", "description": "Write the pages", "type": "writing", "depends_on": []},
            {"id": "2", "description": "Deploy the site", "type": "general", "depends_on": ["1"]},
        ]
    }
)


def respond(prompt: Prompt) -> str:
    text = prompt.flat_text()
    return PLAN if "Your task:" not in text else "did: " + text.rsplit("Your task: ", 1)[1].splitlines()[0]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    box: dict[str, Any] = {"model": ScriptedModel(respond)}
    monkeypatch.setattr(cli_common, "load_model", lambda args, settings: box["model"])
    monkeypatch.setenv("GENESIS_PS_HOME", str(tmp_path))
    for k in list(os.environ):
        if k.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(k)
    return box


def test_decompose_json_shape(scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decompose", "Make a website", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in out["tasks"]] == ["1", "2"]
    assert set(out["tasks"][0]) == {"id", "description", "type", "depends_on"}
    assert out["fallback"] is None and out["quality"] > 0.9 and out["cost_multiplier"] == 1.0
    assert out["generation_fallbacks"] == ["flag_off"]


def test_decompose_tree_and_fallback_reported(scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    scripted["model"] = ScriptedModel(["I cannot help with JSON."])
    assert main(["decompose", "Write the pages, then deploy the site"]) == 0
    out = capsys.readouterr().out
    assert "- [1]" in out and "fallback: heuristic:unparseable" in out


def test_bad_input_is_a_clear_error(scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decompose", "   "]) == 2
    assert "request" in capsys.readouterr().err
    assert main(["run", "x" * 5000]) == 2
    assert main(["run", "--resume", "no-such-thread"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_bad_flag_fails_at_startup(
    scripted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWER_SAMPLING_HTDAG_ENABLE", "1")  # typo
    assert main(["run", "Make a website"]) == 2
    assert "POWER_SAMPLING_HTDAG_ENABLE" in capsys.readouterr().err


def test_run_report_and_json(scripted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Make a website"]) == 0
    cap = capsys.readouterr()
    assert f"checkpoints: {tmp_path / 'checkpoints.sqlite'}" in cap.err
    assert "did: Deploy the site" in cap.out and "measured cost multiplier 1.00" in cap.out
    assert "fallbacks: flag_off×3" in cap.out
    assert main(["run", "Make a website", "--json", "--thread-id", "t1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["thread_id"] == "t1" and out["summary"]["done"] == 2
    assert out["tasks"][1]["output"] == "did: Deploy the site" and out["answer"] == "did: Deploy the site"


def test_run_resume_continues_without_redoing_tasks(
    scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(prompt: Prompt) -> str:
        if "Your task: Deploy the site" in prompt.flat_text():
            raise ProviderConnectionError("network down", provider="scripted")
        return respond(prompt)

    scripted["model"] = ScriptedModel(broken)
    assert main(["run", "Make a website", "--thread-id", "t-resume"]) == 2
    assert "--resume t-resume" in capsys.readouterr().err
    good = ScriptedModel(respond)
    scripted["model"] = good
    assert main(["run", "--resume", "t-resume", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["done"] == 2
    assert len(good.calls) == 1 and "Deploy the site" in good.calls[0].flat_text()


def _embedded_available() -> bool:
    try:
        import genesis_ps.providers.local.embedded  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _embedded_available(), reason="providers/embedded.py not present")
def test_end_to_end_run_on_the_embedded_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWER_SAMPLING_")}
    env |= {
        "GENESIS_PS_HOME": str(tmp_path),
        "POWER_SAMPLING_ENABLED": "1",
        "POWER_SAMPLING_HTDAG_ENABLED": "1",
        "POWER_SAMPLING_HTDAG_METHOD": "mh",
        "POWER_SAMPLING_HTDAG_N_MCMC": "1",
        "POWER_SAMPLING_HTDAG_BLOCK_SIZE": "16",
        "POWER_SAMPLING_SEED": "0",
    }
    cmd = [
        sys.executable,
        "-m",
        "genesis_ps",
        "run",
        "Write a haiku about autumn, then give it a title.",
        "--json",
        "--task-max-new-tokens",
        "24",
        "--plan-max-new-tokens",
        "48",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    s = out["summary"]
    assert s["tasks"] >= 1 and s["done"] + s["failed"] + s["skipped"] == s["tasks"]
    assert s["tokens_generated"] >= s["tokens_returned"] > 0
    # the plan was power-sampled on a model with log-probs (MH); its cost is measured, not assumed
    plan = out["summary"]["plan"]
    assert plan["generation_fallbacks"] == [] and plan["methods_used"] == ["mh"]
    assert plan["tokens_generated"] > 0
    gens = [g for o in out["tasks"] for g in o["generations"]]
    assert gens and all(g["method"] == "mh" and g["fallback"] is None for g in gens)
    assert s["cost_multiplier"] == round(s["tokens_generated"] / s["tokens_returned"], 4)
    assert (tmp_path / "checkpoints.sqlite").exists()


def test_decompose_with_power_and_quality_tilt(scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decompose", "Make a website", "--json", "--method", "imh", "--plan-lam", "1.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    gen = out["generations"][0]
    assert out["methods_used"] == ["imh"] and gen["fallback"] is None and gen["reward"] == pytest.approx(out["quality"])
    assert out["cost_multiplier"] > 1.0  # several proposals were sampled per returned text (measured)


def test_run_exits_non_zero_when_no_task_succeeded(
    scripted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    scripted["model"] = ScriptedModel(lambda p: PLAN if "Your task:" not in p.flat_text() else "")  # empty answers
    assert main(["run", "Make a website", "--thread-id", "t-empty"]) == 1
    cap = capsys.readouterr()
    assert "no task succeeded (1 failed, 1 skipped)" in cap.err
    assert "[1] (writing, typed by model) Write the pages  — failed via default" in cap.out


def test_run_report_shows_method_acceptance_cost_and_fallback_per_task(
    scripted: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    on = {"POWER_SAMPLING_ENABLED": "1", "POWER_SAMPLING_HTDAG_ENABLED": "1", "POWER_SAMPLING_HTDAG_METHOD": "imh",
          "POWER_SAMPLING_HTDAG_N_MCMC": "2"}  # fmt: skip
    for k, v in on.items():
        monkeypatch.setenv(k, v)
    assert main(["run", "Make a website"]) == 0
    out = capsys.readouterr().out
    assert "method imh, acceptance " in out and "cost ×3.00" in out and "fallbacks: none" in out


def test_checkpoint_db_urls_and_metrics_addr(
    scripted: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run", "Make a website", "--checkpoint-db", "mysql://u@h/db"]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint-db" in err and "unsupported checkpoint URL scheme 'mysql'" in err
    import genesis_ps.observability as obs

    bound: list[tuple[int, str]] = []
    monkeypatch.setattr(obs, "start_metrics_server", lambda port, addr="?": bound.append((port, addr)))
    assert main(["run", "Make a website", "--metrics-port", "9464"]) == 0
    assert main(["run", "Make a website", "--metrics-port", "9465", "--metrics-addr", "0.0.0.0"]) == 0
    assert bound == [(9464, "127.0.0.1"), (9465, "0.0.0.0")]
