"""Hostile candidate code: every escape and forgery reproduced in issue 12, each contained.

Contained means, for every case, within its time limit: no file appears outside the sandbox (a marker
directory on the host stays empty), no connection reaches a listener on 127.0.0.1, no secret from another
process's ``/proc/*/environ`` and no line of ``/etc/passwd`` comes out, and a wrong answer scores 0.
Every escape is tried twice: directly (the audit hook sees it) and from a fresh interpreter started with
``_posixsubprocess.fork_exec`` (no audit event, no hook: only bubblewrap stands in the way). The escapes
run as this process's user (root in CI) and from a process that is uid 1000 in a user namespace
(``unshare --user --map-user=1000``: bubblewrap's unprivileged path; the kernel still counts it as uid 0,
so the process limit is checked in the root run, where the sandbox drops to uid 65534).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genesis_ps.evaluators import CodeEvaluator, SandboxLimits
from genesis_ps.evaluators.isolation import SANDBOX_UID, Runtime, runtime
from genesis_ps.evaluators.sandbox import run_python

SRC = Path(__file__).resolve().parents[1] / "src"
SECRET = "gps-hostile-secret-" + os.urandom(8).hex()
LIMITS = SandboxLimits(timeout_s=4.0, cpu_s=3, memory_mb=256, max_output_bytes=50_000, max_processes=2)
SLACK_S = 4.0

pytestmark = pytest.mark.skipif(not runtime().boundary, reason=f"no bubblewrap boundary here: {runtime().detail}")

UNHOOKED = r'''
import os, sys
def spawn(argv, code=None):
    """Start argv with _posixsubprocess.fork_exec: no audit event, and a new interpreter has no hook."""
    import _posixsubprocess
    r, w = os.pipe()
    args = [os.fsencode(a) for a in argv]
    tail = (True, False, -1, None, None, None, -1, None, False)
    try:
        pid = _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w, *tail)
    except TypeError:  # Python 3.10 and older: no process_group argument
        pid = _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w,
                                         *tail[:2], *tail[3:])
    os.close(w)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
def unhooked(code):
    spawn([sys.executable, "-S", "-c", code])
'''

PAYLOAD = r'''
import os, socket, sqlite3
def attempt(name, fn):
    try:
        fn()
        print("DONE", name)
    except BaseException as e:
        print("blocked", name, type(e).__name__)
M, PORT, HOST_PID = @MARKER@, @PORT@, @HOST_PID@
attempt("open", lambda: open(os.path.join(M, "open.txt"), "w").write("x"))
def dir_fd():
    d = os.open(M, os.O_RDONLY)
    fd = os.open("dirfd.txt", os.O_CREAT | os.O_WRONLY, dir_fd=d)
    os.write(fd, b"x")
attempt("dir_fd", dir_fd)
attempt("sqlite", lambda: sqlite3.connect(os.path.join(M, "db.sqlite")).execute("create table t(x)"))
attempt("mkfifo", lambda: os.mkfifo(os.path.join(M, "fifo")))
def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=1)
    s.sendall(b"escaped")
attempt("connect", connect)
def raw_connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(("127.0.0.1", PORT))
attempt("raw_connect", raw_connect)
def environ():
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                data = open("/proc/%s/environ" % p, "rb").read()
            except OSError:
                continue
            print("ENV", p, data[:4000])
attempt("environ", environ)
attempt("passwd", lambda: print("PASSWD", open("/etc/passwd").read()[:400]))
def setns():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/proc/%d/ns/net" % HOST_PID, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    connect()
attempt("setns", setns)
'''


def escape_source(marker: Path, port: int) -> str:
    payload = (PAYLOAD.replace("@MARKER@", repr(str(marker))).replace("@PORT@", str(port))
               .replace("@HOST_PID@", str(os.getpid())))  # fmt: skip
    sh = f"echo x > {marker}/sh.txt; cat /etc/passwd"
    return (
        UNHOOKED + payload
        + f"\nunhooked({payload!r})\n"
        + f"spawn(['/bin/sh', '-c', {sh!r}])\n"
        + f"spawn(['/usr/bin/nsenter', '--net=/proc/{os.getpid()}/ns/net', '/bin/sh', '-c', {sh!r}])\n"
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A marker directory, a listener on 127.0.0.1 and a process holding a secret in its environment."""
    marker = tmp_path / "marker"
    marker.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              env={"GPS_HOSTILE_SECRET": SECRET, "PATH": "/usr/bin:/bin"})  # fmt: skip
    try:
        yield {"marker": marker, "port": listener.getsockname()[1], "listener": listener}
    finally:
        holder.kill()
        holder.wait()
        listener.close()


def assert_contained(host: dict[str, Any], *texts: str) -> None:
    assert sorted(p.name for p in host["marker"].iterdir()) == [], "a file escaped the sandbox"
    with pytest.raises(BlockingIOError):
        host["listener"].accept()
    joined = "\n".join(texts)
    assert SECRET not in joined, "a secret was read from another process's environment"
    assert "root:x:0:0" not in joined and "root:*:0:0" not in joined, "/etc/passwd was readable"


def timed_run(src: str, limits: SandboxLimits = LIMITS) -> Any:
    t0 = time.monotonic()
    r = run_python(src, limits=limits, channel=True)
    assert time.monotonic() - t0 < limits.timeout_s + SLACK_S, "not stopped within its time limit"
    return r


# ---- escapes, as this process's user ---------------------------------------------------------------
def test_every_escape_is_contained(host: dict[str, Any]) -> None:
    r = timed_run(escape_source(host["marker"], host["port"]))
    assert_contained(host, r.stdout, r.stderr, r.channel.decode("utf-8", "replace"))
    assert r.strong == runtime().strong and "bwrap" in r.isolation
    for name in ("open", "dir_fd", "sqlite", "mkfifo", "connect", "environ", "passwd", "setns"):
        assert f"blocked {name}" in r.stdout or f"DONE {name}" in r.stdout  # each attempt really ran


_DRIVER = r"""
import json, sys
from genesis_ps.evaluators.sandbox import SandboxLimits, run_python
spec = json.loads(sys.argv[1])
r = run_python(spec["src"], limits=SandboxLimits(**spec["limits"]), channel=True)
print(json.dumps({"status": r.status, "stdout": r.stdout, "stderr": r.stderr, "channel": r.channel.hex(),
                  "isolation": list(r.isolation), "strong": r.strong, "sandbox": r.sandbox}))
"""


def as_normal_user(src: str) -> dict[str, Any]:
    """Run ``src`` in the sandbox from a process that is uid 1000 (a user namespace), not root."""
    lim = {k: getattr(LIMITS, k) for k in ("timeout_s", "cpu_s", "memory_mb", "max_output_bytes", "max_processes")}
    cmd = ["unshare", "--user", "--map-user=1000", "--map-group=1000", sys.executable, "-c", _DRIVER,
           json.dumps({"src": src, "limits": lim})]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC), "HOME": "/nonexistent"}
    out = subprocess.run(cmd, capture_output=True, timeout=90, env=env)
    if out.returncode != 0 and b"unshare" in out.stderr[:200]:
        pytest.skip(f"cannot make a user namespace here: {out.stderr.decode()[:200]}")
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


@pytest.mark.skipif(os.geteuid() != 0, reason="this process already runs as a normal user")
def test_every_escape_is_contained_as_a_normal_user(host: dict[str, Any]) -> None:
    r = as_normal_user(escape_source(host["marker"], host["port"]))
    assert "bwrap" in r["isolation"], r["sandbox"]
    assert_contained(host, r["stdout"], r["stderr"], bytes.fromhex(r["channel"]).decode("utf-8", "replace"))
    assert "blocked open" in r["stdout"] and "blocked connect" in r["stdout"]


# ---- the contained cases ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "statuses"),
    [
        ("while True:\n    pass\n", {"timeout", "cpu_limit"}),
        ("x = bytearray(20 * 2**30)\n", {"memory", "killed"}),
        ("while True:\n    print('x' * 65536)\n", {"output_limit"}),  # a 1 GB flood, cut at the cap
        ("import ctypes\nctypes.string_at(0)\n", {"killed", "forbidden"}),
        ("import socket\nsocket.socket(socket.AF_INET).connect(('127.0.0.1', 1))\n", {"forbidden"}),
        ("import os\nwhile True:\n    os.fork()\n", {"forbidden", "error", "killed", "timeout"}),
    ],
    ids=["infinite_loop", "alloc_20GB", "output_flood", "ctypes_segfault", "direct_socket", "fork_bomb"],
)
def test_contained_cases_end_on_time_with_the_reason(host: dict[str, Any], src: str, statuses: set[str]) -> None:
    r = timed_run(src)
    assert r.status in statuses, r
    assert r.reason
    assert len(r.stdout) <= LIMITS.max_output_bytes
    assert_contained(host, r.stdout, r.stderr)


def _nobody_processes() -> int:
    n = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                lines = Path(f"/proc/{p}/status").read_text().splitlines()
                uid_line = next(ln for ln in lines if ln.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            n += int(uid_line.split()[1]) == SANDBOX_UID
    return n


@pytest.mark.skipif(not (runtime().strong and runtime().run_as == SANDBOX_UID), reason="needs root dropping to nobody")
def test_a_fork_bomb_without_audit_events_is_capped_by_the_kernel() -> None:
    bomb = UNHOOKED + "import time\nwhile True:\n    spawn([sys.executable, '-S', '-c', open('main.py').read()])\n"
    base, peak, stop = _nobody_processes(), [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _nobody_processes())
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        r = timed_run(bomb, SandboxLimits(timeout_s=3.0, max_processes=3, max_output_bytes=50_000))
    finally:
        stop.set()
        t.join()
    assert r.status in ("timeout", "error", "ok", "killed", "output_limit"), r
    if r.status == "output_limit":  # a fast host: the refused forks' tracebacks filled the output cap first
        assert "Resource temporarily unavailable" in r.stderr, r
    # bwrap (outer and init) + the interpreter + max_processes children, whatever else runs as nobody
    assert peak[0] - base <= 3 + 3 + 2, (base, peak)
    time.sleep(0.3)
    assert _nobody_processes() <= base, "sandbox processes outlived the run"


# ---- forged verdicts ---------------------------------------------------------------------------------
TESTS = ["assert f(2) == 4", "assert f(3) == 9", "assert abs(f(1.5) - 2.25) < 1e-9"]
WRONG = "def f(x):\n    return x + 1\n"
FORGERIES = {
    "overwrite_tests": "import os\nfor n in ('tests.py', 'harness.json', 'main.py'):\n"
    "    try:\n        open(n, 'w').write('def test_ok():\\n    pass\\n')\n    except OSError:\n        pass\n"
    "    try:\n        os.replace('/dev/null', n)\n    except OSError:\n        pass\n" + WRONG,
    "replace_json_dumps": "import json, builtins\njson.dumps = lambda *a, **k: '{\"passed\": 3, \"total\": 3}'\n"
    "builtins.abs = lambda x: 0\nbuiltins.type = lambda *a: int\n" + WRONG,
    "read_runner_frames": "import gc, sys\nfor o in gc.get_objects():\n"
    "    if callable(o) and getattr(o, '__name__', '') in ('check', 'emit', 'end'):\n"
    "        for args in ((0, 4), (1, 9), (2, 0.0)):\n            try:\n                o(*args)\n"
    "            except Exception:\n                pass\n"
    "f = sys._getframe()\nwhile f is not None:\n    print(sorted(f.f_locals)[:20])\n    f = f.f_back\n" + WRONG,
    "eq_always_true": "class Any:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
    "    def __sub__(self, other):\n        return self\n    def __abs__(self):\n        return 0.0\n"
    "def f(x):\n    return Any()\n",
    "int_subclass_eq": "class I(int):\n    def __eq__(self, other):\n        return True\n    def __lt__(self, o):\n"
    "        return True\ndef f(x):\n    return I(0)\n",
    "forged_channel_records": "import os\nfake = b''.join(b'{\"k\":\"%s\",\"t\":%d,\"ok\":1}\\n' % (k, t) "
    "for k, t in ((b'end', -2), (b'end', -1), (b'end', 0), (b'end', 1), (b'end', 2))) + b'{\"k\":\"done\"}\\n'\n"
    "for fd in range(3, 64):\n    try:\n        os.write(fd, fake)\n    except OSError:\n        pass\nos._exit(0)\n",
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_verdicts_score_zero(name: str) -> None:
    ev = CodeEvaluator(TESTS, limits=LIMITS)
    t0 = time.monotonic()
    s = ev.evaluate(FORGERIES[name])
    assert time.monotonic() - t0 < LIMITS.timeout_s + SLACK_S
    assert s.ok and s.value == 0.0, (name, s.details)
    assert s.details["parent_checked"] == 3 and s.details["strong_sandbox"] == runtime().strong


def test_the_right_answer_still_scores_one_and_expected_values_stay_outside() -> None:
    ev = CodeEvaluator(TESTS, limits=LIMITS)
    right = ev.evaluate("def f(x):\n    return x * x\n")
    assert right.value == 1.0, right.details
    peek = ev.evaluate("print(open('tests.py').read(), open('harness.json').read())\ndef f(x):\n    return x * x\n")
    assert peek.value == 1.0
    # what the candidate could read holds the calls, not the expected values
    probe = run_python("print(open('tests.py').read())", files={"tests.py": _rewritten()})
    assert "f(2)" in probe.stdout and "== 4" not in probe.stdout and "2.25" in probe.stdout


def _rewritten() -> str:
    from genesis_ps.evaluators.verdict import plan_tests

    return plan_tests("\n".join(f"def test_{i}():\n    {t}\n" for i, t in enumerate(TESTS)), None).source


# ---- where the sandbox is weaker ------------------------------------------------------------------------
def test_a_weak_sandbox_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from genesis_ps.evaluators import code, sandbox

    weak = Runtime(boundary=False, strong=False, detail="bubblewrap (bwrap) is not installed (test)")
    for mod in (code, sandbox):
        monkeypatch.setattr(mod, "runtime", lambda: weak)
    monkeypatch.delenv("POWER_SAMPLING_ALLOW_WEAK_SANDBOX", raising=False)
    refused = CodeEvaluator(TESTS, limits=LIMITS).evaluate("def f(x):\n    return x * x\n")
    assert refused.value is None and refused.details["status"] == "refused" and "bwrap" in (refused.error or "")
    monkeypatch.setenv("POWER_SAMPLING_ALLOW_WEAK_SANDBOX", "1")
    allowed = CodeEvaluator(TESTS, limits=LIMITS).evaluate("def f(x):\n    return x * x\n")
    assert allowed.value == 1.0 and allowed.details["strong_sandbox"] is False
    assert "not installed" in allowed.details["sandbox"]
    explicit = CodeEvaluator(TESTS, limits=LIMITS, allow_weak_sandbox=False).evaluate("def f(x):\n    return x*x\n")
    assert explicit.value is None
