"""``--checkpoint-db postgresql://…`` really checkpoints to PostgreSQL: a run interrupted mid-way resumes
from the checkpoints in the server. The test starts its own throw-away cluster from Debian's
``postgresql`` package (``initdb`` / ``pg_ctl``, as a non-root user when run as root, on a loopback port)
and skips, saying why, only where it cannot start one."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genesis_ps.cli.common as cli_common
from genesis_ps.cli import main
from genesis_ps.errors import ProviderConnectionError
from genesis_ps.graph.checkpoints import checkpoint_target, redact_url
from genesis_ps.sampling import Prompt
from genesis_ps.testing import ScriptedModel

PLAN = json.dumps({"tasks": [
    {"id": "1", "description": "Write the pages", "type": "writing", "depends_on": []},
    {"id": "2", "description": "Deploy the site", "type": "general", "depends_on": ["1"]},
]})  # fmt: skip


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is not installed")
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="genesis_pg_"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run the cluster as an unprivileged user
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start postgres as another user")
        shutil.chown(root, user="nobody")
        prefix = [runuser, "-u", "nobody", "--"]
    data, port = root / "data", _free_port()
    log = root / "server.log"

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120, cwd=root)

    started = False
    try:
        r = run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        r = run(pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start")
        if r.returncode != 0:
            tail = log.read_text()[-300:] if log.exists() else ""
            pytest.skip(f"pg_ctl start failed: {r.stderr.strip()[-300:]} {tail}")
        started = True
        yield f"postgresql://postgres:secret@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        with contextlib.suppress(OSError):
            shutil.rmtree(root)


def test_url_validation_and_redaction() -> None:
    assert checkpoint_target("postgresql://u:p@h:5432/db") == ("postgres", "postgresql://u:p@h:5432/db")
    assert checkpoint_target("postgres://h/db")[0] == "postgres"
    assert checkpoint_target("sqlite:///tmp/x.sqlite") == ("sqlite", "/tmp/x.sqlite")
    assert checkpoint_target("runs/ckpt.sqlite")[0] == "sqlite"
    assert redact_url("postgresql://user:hunter2@db:5432/x") == "postgresql://user:***@db:5432/x"


def test_run_checkpoints_to_postgres_and_resumes_from_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import psycopg

    box: dict[str, Any] = {}
    monkeypatch.setattr(cli_common, "load_model", lambda args, settings: box["model"])
    monkeypatch.setenv("GENESIS_PS_HOME", str(tmp_path))
    for k in list(os.environ):
        if k.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(k)

    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        return PLAN if "Your task:" not in text else "did: " + text.rsplit("Your task: ", 1)[1].splitlines()[0]

    def broken(prompt: Prompt) -> str:
        if "Your task: Deploy the site" in prompt.flat_text():
            raise ProviderConnectionError("network down", provider="scripted")
        return respond(prompt)

    box["model"] = ScriptedModel(broken)
    args = ["run", "Make a website", "--checkpoint-db", postgres_url, "--thread-id", "pg-1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "postgresql://postgres:***@127.0.0.1" in err and "secret" not in err  # the password is never printed
    assert "--resume pg-1 --checkpoint-db postgresql://postgres:***@127.0.0.1" in err
    with psycopg.connect(postgres_url) as conn:  # the checkpoints are in the server
        (n,) = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", ("pg-1",)).fetchone()  # type: ignore[misc]
    assert n > 0
    assert not (tmp_path / "checkpoints.sqlite").exists()  # and no SQLite file was made instead
    good = ScriptedModel(respond)
    box["model"] = good
    assert main(["run", "--resume", "pg-1", "--checkpoint-db", postgres_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["done"] == 2 and out["answer"] == "did: Deploy the site"
    assert [p.flat_text().count("Your task: Deploy the site") for p in good.calls] == [1]  # only the unfinished task


def test_unreachable_postgres_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is not installed")
    url = f"postgresql://nobody:pw@127.0.0.1:{_free_port()}/x?connect_timeout=2"
    assert main(["run", "Make a website", "--checkpoint-db", url]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint-db" in err and "cannot use postgresql://nobody:***@127.0.0.1" in err and "pw@" not in err
