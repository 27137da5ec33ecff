"""Run untrusted Python in a sandboxed subprocess, and say exactly which isolation was in force.

Layers, outermost first (``SandboxResult.isolation`` lists the ones that were actually used):

- ``netns`` / ``pidns``: ``unshare -n --pid --fork --kill-child`` (``-r`` added when not root, for a user
  namespace): no network interface but loopback, and every descendant dies with the sandbox's PID 1.
  Used when ``unshare`` works on this machine (probed once); otherwise left out, and said so.
- ``rlimits``: CPU seconds, address space, file size, open files and core size are capped with
  ``resource.setrlimit`` before any candidate code runs (soft = hard, so the code cannot raise them).
  ``RLIMIT_NPROC`` is set too, but the kernel does not enforce it for root, so it is listed as
  ``nproc`` only when the sandbox does not run as root.
- ``audit_hook``: a ``sys.addaudithook`` guard in the child blocks non-AF_UNIX sockets and name
  lookups, process creation beyond ``max_processes``, writes/renames/removals outside the sandbox
  directory, ``ctypes`` symbol lookups, raising rlimits and signalling other processes. Audit hooks
  are a guard against the accidents of generated code, not a boundary against a determined attacker;
  the OS layers above are the boundary.
- ``pgkill``: the child runs in its own session; at the wall-clock timeout or when its output passes
  ``max_output_bytes`` the whole process group is killed (SIGKILL) and only the bytes read so far are
  kept.
- ``tmpdir``: the code runs in its own fresh temporary directory (removed afterwards) with a minimal
  environment (``python -I``; no inherited variables, no bytecode writes).
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genesis_ps.errors import ConfigError

__all__ = ["SandboxLimits", "SandboxResult", "available_isolation", "run_python"]

VIOLATION_MARK = "__SANDBOX_VIOLATION__"

_BOOT = r"""
import sys, os, json, resource
cfg = json.loads(sys.argv[1]); del sys.argv[1]
root = os.path.realpath(cfg["root"])
def _lim(r, v):
    try: resource.setrlimit(r, (v, v))
    except (ValueError, OSError): pass
_lim(resource.RLIMIT_CPU, cfg["cpu_s"]); _lim(resource.RLIMIT_AS, cfg["memory_bytes"])
_lim(resource.RLIMIT_FSIZE, cfg["max_file_bytes"]); _lim(resource.RLIMIT_NOFILE, cfg["max_open_files"])
_lim(resource.RLIMIT_CORE, 0); _lim(resource.RLIMIT_NPROC, cfg["nproc"])
os.chdir(root); sys.path.insert(0, root); sys.dont_write_bytecode = True
_procs = [0]; _me = os.getpid()
_W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def _violation(kind, detail):
    try: os.write(2, ("\n%s %s %s\n" % (cfg["mark"], kind, detail)).encode("utf-8", "replace"))
    except OSError: pass
    raise PermissionError("sandbox: %s blocked (%s)" % (kind, detail))
def _inside(p):
    if isinstance(p, int): return True
    try: full = os.path.realpath(os.path.join(os.getcwd(), os.fsdecode(p)))
    except Exception: return False
    return full == root or full.startswith(root + os.sep) or full == "/dev/null"
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
    "os.symlink", "os.link", "os.rename", "shutil.rmtree", "shutil.move", "os.setxattr", "os.removexattr"}
_PROC_EVENTS = {"os.fork", "os.forkpty", "subprocess.Popen", "os.posix_spawn", "os.spawn", "os.system",
    "os.exec"}
def _hook(event, args):
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _W)
        if writing and path is not None and not _inside(path): _violation("write_outside", repr(path))
    elif event in _PATH_EVENTS:
        for p in [a for a in args if isinstance(a, (str, bytes, os.PathLike))][:2]:
            if not _inside(p): _violation("write_outside", "%s %r" % (event, p))
    elif event == "socket.__new__":
        if len(args) > 1 and args[1] != 1: _violation("network", "socket family %r" % (args[1],))
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        _violation("network", event)
    elif event in _PROC_EVENTS:
        _procs[0] += 1
        if _procs[0] > cfg["max_processes"]: _violation("process_limit", event)
    elif event in ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata"): _violation("ctypes", event)
    elif event in ("resource.setrlimit", "resource.prlimit"): _violation("rlimit", event)
    elif event in ("os.kill", "os.killpg") and args and args[0] not in (0, _me): _violation("signal", event)
sys.addaudithook(_hook)
del _hook, _lim
import runpy
runpy.run_path(os.path.join(root, "main.py"), run_name="__main__")
"""


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 5.0
    """Wall-clock limit; the process group is killed when it passes."""
    cpu_s: int = 4
    """CPU seconds (RLIMIT_CPU; the kernel kills the process at this limit)."""
    memory_mb: int = 512
    """Address-space limit (RLIMIT_AS) in MiB."""
    max_output_bytes: int = 256_000
    """Bytes read from stdout and stderr together; more kills the run (status ``output_limit``)."""
    max_file_bytes: int = 4_000_000
    """Largest file the code may write (RLIMIT_FSIZE)."""
    max_processes: int = 0
    """Processes the code may start (fork/spawn/subprocess), counted by the audit hook in each process;
    a forked child inherits its parent's count, so a fork bomb makes at most 2**max_processes."""
    max_open_files: int = 64

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0):
            raise ConfigError("timeout_s", f"must be > 0, got {self.timeout_s!r}")
        for name in ("cpu_s", "memory_mb", "max_output_bytes", "max_file_bytes", "max_open_files"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(name, f"must be an integer >= 1, got {v!r}")
        if isinstance(self.max_processes, bool) or not isinstance(self.max_processes, int) or self.max_processes < 0:
            raise ConfigError("max_processes", f"must be an integer >= 0, got {self.max_processes!r}")


@dataclass(frozen=True, kw_only=True)
class SandboxResult:
    """How a sandboxed run ended. ``status``: ok, error, timeout, cpu_limit, memory, file_limit,
    output_limit, forbidden (the audit hook blocked something; ``reason`` says what) or killed."""

    status: str
    reason: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    isolation: tuple[str, ...]
    output_truncated: bool = False


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...]:
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return ()
    user = () if os.geteuid() == 0 else ("-r",)
    for extra in (("--pid", "--fork", "--kill-child"), ()):
        cmd = (exe, *user, "-n", *extra)
        try:
            ok = subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return cmd
    return ()


def available_isolation() -> tuple[str, ...]:
    """The isolation layers a run on this machine gets (see the module docstring)."""
    prefix = _unshare_prefix()
    layers = ["tmpdir", "rlimits", "audit_hook", "pgkill"]
    if os.geteuid() != 0:
        layers.append("nproc")
    if prefix:
        layers.append("netns")
        if "--pid" in prefix:
            layers.append("pidns")
    return tuple(layers)


def run_python(
    main: str,
    *,
    files: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    """Run ``main`` (Python source) as ``__main__`` in a fresh sandbox directory that also holds
    ``files`` (relative name → text). Never raises for anything the code does; raises OSError only when
    the sandbox itself cannot be started."""
    lim = limits or SandboxLimits()
    root = tempfile.mkdtemp(prefix="genesis_ps_sbx_")
    try:
        for name, text in {**(files or {}), "main.py": main}.items():
            path = os.path.realpath(os.path.join(root, name))
            if not path.startswith(root + os.sep):
                raise ConfigError("files", f"file name {name!r} leaves the sandbox directory")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return _execute(root, stdin, lim)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _execute(root: str, stdin: bytes, lim: SandboxLimits) -> SandboxResult:
    cfg = {
        "root": root,
        "cpu_s": lim.cpu_s,
        "memory_bytes": lim.memory_mb * 1024 * 1024,
        "max_file_bytes": lim.max_file_bytes,
        "max_open_files": lim.max_open_files,
        "nproc": max(lim.max_processes + 1, 1) + 1,
        "max_processes": lim.max_processes,
        "mark": VIOLATION_MARK,
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": root,
        "TMPDIR": root,
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [*_unshare_prefix(), sys.executable, "-I", "-c", _BOOT, json.dumps(cfg)]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out, err, ended = bytearray(), bytearray(), "eof"
    feeder: threading.Thread | None = None
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
        feeder.start()  # a thread, so code that never reads a large stdin cannot stall the deadline
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        deadline = t0 + lim.timeout_s
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                ended = "timeout"
                break
            for key, _ in sel.select(timeout=min(left, 0.25)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if len(out) + len(err) > lim.max_output_bytes:
                    ended = "output_limit"
                    break
            if ended != "eof":
                break
        sel.close()
    finally:
        if ended != "eof":
            _kill_group(proc.pid)
        rc, cpu = _wait(proc, deadline=time.monotonic() + max(1.0, lim.timeout_s))
        if feeder is not None:
            feeder.join(timeout=1.0)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    duration = time.monotonic() - t0
    cap = lim.max_output_bytes
    stdout = bytes(out[:cap]).decode("utf-8", "replace")
    stderr = bytes(err[:cap]).decode("utf-8", "replace")
    status, reason = _classify(ended, rc, cpu, stderr, lim)
    return SandboxResult(
        status=status,
        reason=reason,
        returncode=rc,
        stdout=stdout,
        stderr=stderr,
        duration_s=duration,
        isolation=available_isolation(),
        output_truncated=len(out) + len(err) > cap,
    )


def _feed(pipe: Any, data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(proc: subprocess.Popen[bytes], *, deadline: float) -> tuple[int | None, float]:
    """Reap the child with ``wait4`` (its rusage tells CPU time, for ``cpu_limit``); kill the group
    if it will not end."""
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return proc.returncode, 0.0
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            _kill_group(proc.pid)
            deadline = time.monotonic() + 5.0
        time.sleep(0.01)


def _classify(ended: str, rc: int | None, cpu: float, stderr: str, lim: SandboxLimits) -> tuple[str, str]:
    if ended == "timeout":
        return "timeout", f"wall-clock limit of {lim.timeout_s:g} s reached; process group killed"
    if ended == "output_limit":
        return "output_limit", f"output passed {lim.max_output_bytes} bytes; process group killed"
    for line in stderr.splitlines():
        if line.startswith(VIOLATION_MARK):
            return "forbidden", line[len(VIOLATION_MARK) :].strip()
    if rc not in (0, None) and cpu >= lim.cpu_s - 0.05:
        return "cpu_limit", f"CPU limit of {lim.cpu_s} s reached"
    if "File too large" in stderr:
        return "file_limit", f"file size limit of {lim.max_file_bytes} bytes reached"
    if "MemoryError" in stderr:
        return "memory", f"memory limit of {lim.memory_mb} MiB reached (MemoryError)"
    if rc == 0:
        return "ok", ""
    if rc is not None and rc < 0:
        return "killed", f"killed by signal {signal.Signals(-rc).name}"
    last = stderr.strip().splitlines()[-1:] or [f"exit status {rc}"]
    return "error", last[0][:500]
