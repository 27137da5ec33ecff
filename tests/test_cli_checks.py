"""The CLI checks every flag before any model loads, names the flag, and says what is wrong with a
checkpoint or output path in one line (exit 2) — never a traceback."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from genesis_ps.cli import main
from genesis_ps.cli.checks import check_checkpoint
from genesis_ps.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model load fails the test: every check here must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("genesis_ps.providers.registry.build_model", refuse)


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genesis-ps: error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["decompose", "plan a trip", "--plan-max-new-tokens", "0"], "--plan-max-new-tokens"),
        (["decompose", "plan a trip", "--plan-lam", "-1"], "--plan-lam"),
        (["decompose", "plan a trip", "--temperature", "-1"], "--temperature"),
        (["decompose", "plan a trip", "--max-depth", "-2"], "--max-depth"),
        (["decompose", "plan a trip", "--provider", "nope"], "--provider"),
        (["run", "plan a trip", "--task-max-new-tokens", "0"], "--task-max-new-tokens"),
        (["run", "plan a trip", "--plan-max-new-tokens", "0"], "--plan-max-new-tokens"),
        (["run", "plan a trip", "--temperature", "nan"], "--temperature"),
        (["run", "plan a trip", "--metrics-port", "70000"], "--metrics-port"),
        (["sample", "hi", "--temperature", "-1"], "--temperature"),
        (["sample", "hi", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["sample", "hi", "--provider", "openai-compatible", "--model", "m", "--base-url", "notaurl"], "--base-url"),
        (["decompose", "x y", "--provider", "openai-compatible", "--model", "m", "--base-url", "bad"], "--base-url"),
    ],
)
def test_flags_are_checked_before_any_model_loads(argv: list[str], flag: str,
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if argv[0] == "run":
        argv = [*argv, "--checkpoint-db", str(tmp_path / "c.sqlite")]
    fails(argv, capsys, flag)


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize("command", [["sample", "hi"], ["decompose", "plan a trip"]])
def test_a_missing_local_model_path_says_so(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    fails([*command, "--provider", "local", "--model", "/nonexistent/model"], capsys, "--model", "does not exist")


@pytest.mark.usefixtures("no_model_loads")
def test_resume_checks_the_thread_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.sqlite"
    fails(["run", "--resume", "UNKNOWN", "--checkpoint-db", str(db)], capsys, "--resume", "UNKNOWN")
    assert not db.exists()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE checkpoints (thread_id TEXT, checkpoint_ns TEXT, checkpoint_id TEXT)")
    con.execute("INSERT INTO checkpoints VALUES ('known', '', '1')")
    con.commit()
    con.close()
    fails(["run", "--resume", "UNKNOWN", "--checkpoint-db", str(db)], capsys, "no checkpoint for thread 'UNKNOWN'")
    check_checkpoint(db, "known")  # a thread that is there passes


@pytest.mark.usefixtures("no_model_loads")
def test_checkpoint_file_problems_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(["run", "x y", "--checkpoint-db", "/etc/passwd/x.sqlite"], capsys, "--checkpoint-db", "cannot create")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    fails(["run", "x y", "--checkpoint-db", str(corrupt)], capsys, "not a SQLite database")
    good = tmp_path / "good.sqlite"
    con = sqlite3.connect(good)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    con.commit()
    con.close()
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(ConfigError, match="checkpoint-db"):
        check_checkpoint(truncated, "thread")
    holder = sqlite3.connect(good)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        fails(["run", "x y", "--checkpoint-db", str(good)], capsys, "is locked by another process")
    finally:
        holder.rollback()
        holder.close()
    fails(["run", "x y", "--checkpoint-db", str(tmp_path)], capsys, "is a directory")


@pytest.mark.usefixtures("no_model_loads")
def test_unwritable_output_directory_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    fails(["bench", "exactness", "--out", "/etc/passwd/x"], capsys, "--out", "cannot write reports")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_a_closed_port_reports_the_refused_connection(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    monkeypatch.setenv("POWER_SAMPLING_MAX_RETRIES", "0")
    monkeypatch.setenv("POWER_SAMPLING_BREAKER_FAIL_MAX", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnop")
    argv = ["sample", "hi", "--provider", "openai-compatible", "--model", f"closed-{port}", "--base-url",
            f"http://127.0.0.1:{port}/v1", "--json"]  # fmt: skip
    err = fails(argv, capsys, f"connection refused to 127.0.0.1:{port}")
    assert "circuit breaker" in err and "last failure" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "plan a trip", "--checkpoint-db", "/etc/passwd/x.sqlite"],
        ["bench", "speed", "--out", "/etc/passwd/x"],
        ["sample", "hi", "--provider", "local", "--model", "/nonexistent"],
    ],
)
def test_no_traceback_reaches_the_shell(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-m", "genesis_ps", *argv], capture_output=True, text=True, timeout=120,
                         env=env)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.startswith("genesis-ps: error: ")
    assert out.stderr.strip().count("\n") == 0, out.stderr
