"""The sandbox stops misbehaving candidate code on time, with the reason, and leaves the host alone."""

from __future__ import annotations

import os
import time

import pytest

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.sandbox import SandboxLimits, available_isolation, run_python

LIMITS = SandboxLimits(timeout_s=2.5, cpu_s=2, memory_mb=256, max_output_bytes=20_000, max_file_bytes=100_000)


def run(src: str, **kw: object) -> object:
    t0 = time.monotonic()
    r = run_python(src, limits=kw.pop("limits", LIMITS), **kw)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < LIMITS.timeout_s + 3.0  # on time, whatever the code does
    return r


def test_well_behaved_code_runs_and_reports_isolation() -> None:
    r = run("import sys; print('hello', sys.stdin.read())", stdin=b"world")
    assert r.status == "ok" and r.returncode == 0
    assert r.stdout.strip() == "hello world"
    assert {"tmpdir", "rlimits", "audit_hook", "pgkill"} <= set(r.isolation)
    assert r.isolation == available_isolation()


def test_infinite_loop_is_stopped() -> None:
    r = run("while True:\n    pass\n")
    assert r.status in ("timeout", "cpu_limit"), r
    assert r.reason


def test_sleeping_forever_hits_the_wall_clock_timeout() -> None:
    r = run("import time\ntime.sleep(60)\n")
    assert r.status == "timeout"
    assert "killed" in r.reason


def test_unbounded_allocation_hits_the_memory_limit() -> None:
    r = run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n")
    assert r.status in ("memory", "killed"), r
    assert "memory" in r.reason or "signal" in r.reason


def test_fork_bomb_is_bounded() -> None:
    r = run("import os\nwhile True:\n    os.fork()\n", limits=SandboxLimits(timeout_s=2.5, max_processes=2))
    assert r.status == "forbidden"
    assert r.reason.startswith("process_limit")


def test_subprocess_is_blocked() -> None:
    r = run("import subprocess\nsubprocess.run(['echo', 'hi'])\n")
    assert r.status == "forbidden" and "subprocess.Popen" in r.reason


def test_write_outside_the_sandbox_is_blocked(tmp_path: object) -> None:
    target = os.path.join(str(tmp_path), "escaped.txt")
    r = run(f"open({target!r}, 'w').write('x')\n")
    # the audit hook refuses it, or (bubblewrap) the path is the sandbox's own /tmp, where it does not exist
    assert (r.status == "forbidden" and r.reason.startswith("write_outside")) or (
        "bwrap" in r.isolation and "FileNotFoundError" in r.reason), r
    assert not os.path.exists(target)


def test_removing_a_host_file_is_blocked(tmp_path: object) -> None:
    victim = os.path.join(str(tmp_path), "keep.txt")
    with open(victim, "w") as fh:
        fh.write("precious")
    r = run(f"import os\nos.remove({victim!r})\n")
    assert r.status == "forbidden" or ("bwrap" in r.isolation and "FileNotFoundError" in r.reason), r
    assert open(victim).read() == "precious"


def test_writing_inside_the_sandbox_works_and_is_size_capped() -> None:
    assert run("open('a.txt', 'w').write('ok'); print(open('a.txt').read())").stdout.strip() == "ok"
    r = run("open('big.bin', 'wb').write(b'x' * 10**6)\n")
    assert r.status == "file_limit"


@pytest.mark.parametrize(
    "src",
    [
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
        "import socket\nsocket.create_connection(('93.184.216.34', 80), timeout=1)\n",
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)\n",
    ],
)
def test_network_is_blocked(src: str) -> None:
    r = run(src)
    assert r.status == "forbidden" and r.reason.startswith("network"), r


def test_local_socketpair_still_works_for_asyncio() -> None:
    r = run("import asyncio\nprint(asyncio.run(asyncio.sleep(0, 7)))\n")
    assert r.status == "ok" and r.stdout.strip() == "7"


def test_flooding_output_is_cut_at_the_cap() -> None:
    r = run("while True:\n    print('x' * 10000)\n")
    assert r.status == "output_limit"
    assert r.output_truncated
    assert len(r.stdout) <= LIMITS.max_output_bytes


def test_raising_rlimits_is_blocked() -> None:
    r = run("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1000, 1000))\n")
    assert r.status == "forbidden" and r.reason.startswith("rlimit")


def test_exceptions_are_errors_with_the_message() -> None:
    r = run("raise ValueError('boom')\n")
    assert r.status == "error" and "ValueError: boom" in r.reason


def test_invalid_limits_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ConfigError, match="max_processes"):
        SandboxLimits(max_processes=-1)
    with pytest.raises(ConfigError, match="files"):
        run_python("pass", files={"../escape.py": "x"})


def test_without_namespaces_the_audit_hook_still_blocks_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from genesis_ps.evaluators import isolation, sandbox

    weak = isolation.Runtime(boundary=False, strong=False, detail="no bubblewrap (test)")
    monkeypatch.setattr(sandbox, "runtime", lambda: weak)
    monkeypatch.setattr(sandbox, "unshare_prefix", lambda: ())
    r = run("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n")
    assert r.status == "forbidden" and r.reason.startswith("network")
    assert "netns" not in r.isolation and "audit_hook" in r.isolation
    assert not r.strong and r.sandbox == "no bubblewrap (test)"
    assert run("while True:\n    print('y' * 10000)\n").status == "output_limit"


def test_large_unread_stdin_does_not_stall_the_timeout() -> None:
    r = run("import time\ntime.sleep(60)\n", stdin=b"x" * 5_000_000)
    assert r.status == "timeout"


def test_concurrent_runs_with_channels_do_not_close_each_others_fds() -> None:
    """Each run closes its channel's write end once: a second close used to hit whatever fd another
    thread's run had just been given that number (SE-Darwin evaluates offspring in parallel), so a correct
    solution timed out or the run raised EBADF — about once in the first four parallel runs here."""
    from concurrent.futures import ThreadPoolExecutor

    main = "import os\nos.write(SANDBOX_CHANNEL_FD, b'ok')\nprint('done')\n"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: run_python(main, channel=True, limits=SandboxLimits(timeout_s=20.0)),
                                range(48)))  # fmt: skip
    assert [(r.status, r.channel, r.stdout.strip()) for r in results] == [("ok", b"ok", "done")] * 48
