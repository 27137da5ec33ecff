"""Run untrusted Python in a sandbox, and say exactly which isolation was in force.

The boundary is bubblewrap (:mod:`.isolation`): namespaces, a read-only root holding only the system
libraries and the interpreter, no network, a private size-capped ``/tmp`` as working directory, a clean
environment, and — when this process is root — a sandbox that runs as uid 65534, so the kernel enforces
the process limit. Inside, before any candidate code, :mod:`._boot` sets rlimits (CPU, address space, file
size, open files, processes, core) and an audit hook that reports blocked operations by name. The parent
kills the whole process group at the wall-clock limit or when output passes ``max_output_bytes``.

Where bubblewrap is missing or unusable the run is *weak* (``SandboxResult.strong`` is False and
``sandbox`` says why): the code runs in a host temporary directory, in ``unshare`` network/PID namespaces
when those work, with the same rlimits and audit hook — a guard against accidents, not a boundary.

``SandboxResult.isolation`` lists the layers used: ``bwrap`` (and ``userns``, ``mountns``, ``ro_root``,
``no_host_proc``, ``clean_env``), ``netns``, ``pidns``, ``nproc`` (the kernel enforces the process limit; it
never does for uid 0), ``rlimits``, ``audit_hook``, ``pgkill`` and ``tmpdir``.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.isolation import SANDBOX_DIR, Runtime, bwrap_command, runtime, unshare_prefix

__all__ = ["SandboxLimits", "SandboxResult", "available_isolation", "run_python"]

VIOLATION_MARK = "__SANDBOX_VIOLATION__"
_BOOT = (Path(__file__).parent / "_boot.py").read_text(encoding="utf-8")
_ENV = {"LANG": "C.UTF-8", "HOME": SANDBOX_DIR, "TMPDIR": SANDBOX_DIR, "OMP_NUM_THREADS": "1"}


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
    """Bytes read from stdout and stderr together; more kills the run (status ``output_limit``). The
    result channel has a budget of its own of four times this."""
    max_file_bytes: int = 4_000_000
    """Largest file the code may write (RLIMIT_FSIZE)."""
    max_processes: int = 0
    """Processes the code may start: RLIMIT_NPROC where the kernel enforces it, and the audit hook's count
    of fork/spawn/subprocess events (a forked child inherits its parent's count)."""
    max_open_files: int = 64
    max_tmp_bytes: int = 32_000_000
    """Size of the private writable ``/tmp`` (bwrap only; a weak sandbox writes to the host's disk)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0):
            raise ConfigError("timeout_s", f"must be > 0, got {self.timeout_s!r}")
        for name in ("cpu_s", "memory_mb", "max_output_bytes", "max_file_bytes", "max_open_files",
                     "max_tmp_bytes"):  # fmt: skip
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
    strong: bool = False
    """bubblewrap was the boundary and the kernel enforced the process limit."""
    sandbox: str = ""
    """What the sandbox was, or what was weaker and why (:attr:`.isolation.Runtime.detail`)."""
    channel: bytes = b""
    """What the code wrote to the result channel (``run_python(..., channel=True)``)."""


def available_isolation(rt: Runtime | None = None) -> tuple[str, ...]:
    """The isolation layers a run on this machine gets (see the module docstring)."""
    rt = rt or runtime()
    layers = ["tmpdir", "rlimits", "audit_hook", "pgkill"]
    if rt.boundary:
        layers += ["bwrap", "userns", "mountns", "netns", "pidns", "ro_root", "no_host_proc", "clean_env"]
        if rt.strong:
            layers.append("nproc")
        return tuple(layers)
    prefix = unshare_prefix()
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
    channel: bool = False,
) -> SandboxResult:
    """Run ``main`` (Python source) as ``__main__`` in a fresh sandbox whose working directory also holds
    ``files`` (relative name → text), read-only. With ``channel``, the code gets a pipe (its fd number is
    ``SANDBOX_CHANNEL_FD`` in ``main``'s globals) whose bytes come back in ``SandboxResult.channel``.
    Never raises for anything the code does; raises OSError only when the sandbox cannot be started."""
    lim = limits or SandboxLimits()
    named = {**(files or {}), "main.py": main, "_boot.py": _BOOT}
    for name in named:
        parts = name.replace("\\", "/").split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ConfigError("files", f"file name {name!r} leaves the sandbox directory")
    rt = runtime()
    read_end, write_end = os.pipe() if channel else (-1, -1)
    # The write end is closed exactly once, by _execute right after the child starts (or by _WriteEnd when
    # setup fails before that): closing it a second time here once closed whatever fd another thread's
    # concurrent run had just been given that number (a hung or EBADF run when evaluations ran in parallel).
    w = _WriteEnd(write_end)
    try:
        if rt.boundary:
            return _in_bwrap(rt, named, stdin, lim, read_end, w)
        return _in_tmpdir(rt, named, stdin, lim, read_end, w)
    finally:
        w.close()
        if read_end >= 0:
            _close(read_end)


class _WriteEnd:
    """The channel pipe's write end, closed at most once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            _close(fd)


def _config(root: str, lim: SandboxLimits, channel_fd: int, nproc: int) -> str:
    return json.dumps({
        "root": root, "cpu_s": lim.cpu_s, "memory_bytes": lim.memory_mb * 1024 * 1024,
        "max_file_bytes": lim.max_file_bytes, "max_open_files": lim.max_open_files, "nproc": nproc,
        "max_processes": lim.max_processes, "mark": VIOLATION_MARK, "channel_fd": channel_fd,
    })  # fmt: skip


def _in_bwrap(rt: Runtime, named: dict[str, str], stdin: bytes, lim: SandboxLimits, rfd: int, w: _WriteEnd
              ) -> SandboxResult:  # fmt: skip
    assert rt.interpreter is not None
    fds: list[int] = []
    try:
        for text in named.values():
            fd = os.memfd_create("sandbox-file", os.MFD_CLOEXEC)
            fds.append(fd)
            os.write(fd, text.encode("utf-8", "surrogatepass"))
            os.lseek(fd, 0, os.SEEK_SET)
        # bwrap's init and the interpreter count against RLIMIT_NPROC too
        cfg = _config(SANDBOX_DIR, lim, w.fd, lim.max_processes + 2)
        argv = [rt.interpreter.executable, "-I", "-S", "-B", f"{SANDBOX_DIR}/_boot.py", cfg]
        cmd = bwrap_command(rt, argv, data=list(zip(fds, named, strict=True)), tmp_bytes=lim.max_tmp_bytes, env=_ENV)
        user: dict[str, Any] = {} if rt.run_as is None else {"user": rt.run_as, "group": rt.run_as, "extra_groups": []}
        keep = [*fds, w.fd] if w.fd >= 0 else fds
        return _execute(cmd, "/", {"PATH": "/usr/bin:/bin"}, keep, user, stdin, lim, rt, rfd, w)
    finally:
        for fd in fds:
            _close(fd)


def _in_tmpdir(rt: Runtime, named: dict[str, str], stdin: bytes, lim: SandboxLimits, rfd: int, w: _WriteEnd
               ) -> SandboxResult:  # fmt: skip
    root = os.path.realpath(tempfile.mkdtemp(prefix="genesis_ps_sbx_"))
    try:
        for name, text in named.items():
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
                fh.write(text)
        exe = rt.interpreter.executable if rt.interpreter is not None else sys.executable
        cfg = _config(root, lim, w.fd, max(lim.max_processes + 1, 1) + 1)
        cmd = [*unshare_prefix(), exe, "-I", "-S", "-B", os.path.join(root, "_boot.py"), cfg]
        env = {**_ENV, "PATH": "/usr/bin:/bin", "HOME": root, "TMPDIR": root}
        return _execute(cmd, root, env, [w.fd] if w.fd >= 0 else [], {}, stdin, lim, rt, rfd, w)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _execute(cmd: list[str], cwd: str, env: dict[str, str], keep: list[int], user: dict[str, Any], stdin: bytes,
             lim: SandboxLimits, rt: Runtime, rfd: int, w: _WriteEnd) -> SandboxResult:  # fmt: skip
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, pass_fds=keep, **user)  # fmt: skip
    finally:
        w.close()  # the child holds the only write end now: EOF when it (and its children) end
    out, err, chan, ended = bytearray(), bytearray(), bytearray(), "eof"
    feeder: threading.Thread | None = None
    deadline = t0 + lim.timeout_s
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
        feeder.start()  # a thread, so code that never reads a large stdin cannot stall the deadline
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        if rfd >= 0:
            sel.register(rfd, selectors.EVENT_READ, chan)
        ended = _pump(sel, deadline, lim, out, err, chan)
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
    cap = lim.max_output_bytes
    stdout = bytes(out[:cap]).decode("utf-8", "replace")
    stderr = bytes(err[:cap]).decode("utf-8", "replace")
    if rt.boundary and rc is not None and rc > 128:
        rc = -(rc - 128)  # bwrap's init reports a child killed by signal N as 128 + N
    status, reason = _classify(ended, rc, cpu, stderr, lim)
    return SandboxResult(status=status, reason=reason, returncode=rc, stdout=stdout, stderr=stderr,
                         duration_s=time.monotonic() - t0, isolation=available_isolation(rt),
                         output_truncated=len(out) + len(err) > cap, strong=rt.strong, sandbox=rt.detail,
                         channel=bytes(chan[: 4 * cap]))  # fmt: skip


def _pump(sel: selectors.BaseSelector, deadline: float, lim: SandboxLimits, out: bytearray, err: bytearray,
          chan: bytearray) -> str:  # fmt: skip
    """Read every registered stream until EOF; ``timeout`` or ``output_limit`` when a limit passes first."""
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        for key, _ in sel.select(timeout=min(left, 0.25)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            key.data.extend(chunk)
            if len(out) + len(err) > lim.max_output_bytes or len(chan) > 4 * lim.max_output_bytes:
                return "output_limit"
    return "eof"


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


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
    if rc not in (0, None) and (cpu >= lim.cpu_s - 0.05 or rc == -signal.SIGXCPU):
        return "cpu_limit", f"CPU limit of {lim.cpu_s} s reached"
    if "File too large" in stderr or rc == -signal.SIGXFSZ:
        return "file_limit", f"file size limit of {lim.max_file_bytes} bytes reached"
    if "MemoryError" in stderr:
        return "memory", f"memory limit of {lim.memory_mb} MiB reached (MemoryError)"
    if rc == 0:
        return "ok", ""
    if rc is not None and rc < 0:
        try:
            return "killed", f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return "killed", f"killed by signal {-rc}"
    last = stderr.strip().splitlines()[-1:] or [f"exit status {rc}"]
    return "error", last[0][:500]
