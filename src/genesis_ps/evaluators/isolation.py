"""Which isolation a sandboxed run gets on this machine, and the bubblewrap command line that sets it up.

The boundary is `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``; the Debian/Ubuntu/
Fedora package ``bubblewrap``). A run gets:

- new user, PID, IPC, UTS, network, cgroup and mount namespaces (``--unshare-all --unshare-user``), no
  nested user namespaces (``--disable-userns`` where bwrap has it), ``--die-with-parent``,
  ``--new-session``, a clean environment (``--clearenv``);
- a root that holds, read-only, only the system library directories, the interpreter and its standard
  library; a fresh ``/proc`` that shows only the sandbox's own processes, a minimal read-only ``/dev``, and
  a private writable ``/tmp`` (a size-capped tmpfs, gone when the run ends). No ``/etc``, ``/home``,
  ``/root``, ``/usr/bin`` or shell.
- As root, the sandbox does not run as root: bwrap is started as uid 65534 (nobody), so the kernel enforces
  ``RLIMIT_NPROC`` (it never does for uid 0). That needs an interpreter nobody can read; the package's own
  interpreter is preferred, else ``/usr/bin/python3`` or ``/usr/local/bin/python3``. The code runs with
  ``-I -S`` (standard library only).

:func:`runtime` probes this once per process (one real sandboxed ``python -c`` run). Where bwrap is
missing or cannot create namespaces (some containers), or the kernel would not enforce the process limit,
the runtime is *weak*: :attr:`Runtime.detail` says why, ``genesis-ps doctor`` prints it, every
:class:`~genesis_ps.evaluators.sandbox.SandboxResult` carries it, and the code evaluator refuses to run
code unless ``POWER_SAMPLING_ALLOW_WEAK_SANDBOX`` (or its ``allow_weak_sandbox`` argument) opts in.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, replace

__all__ = [
    "SANDBOX_DIR",
    "SANDBOX_UID",
    "Interpreter",
    "Runtime",
    "bwrap_command",
    "runtime",
    "sandbox_status",
    "unshare_prefix",
]

SANDBOX_UID = 65534
"""The host uid a sandbox started by root runs as (nobody), and the uid it sees inside."""
SANDBOX_DIR = "/tmp"
"""The private writable directory inside a bwrap sandbox (its working directory)."""
_SYSTEM_LIBS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
_INFO = (
    "import json, os, sys, sysconfig\n"
    "g = sysconfig.get_config_var\n"
    "libs = [os.path.join(g('LIBDIR') or '', n) for n in {g('INSTSONAME') or '', g('LDLIBRARY') or ''} if '.so' in n]\n"
    "print(json.dumps({'exe': os.path.realpath(sys.executable), 'stdlib': sysconfig.get_path('stdlib'),\n"
    "  'dynload': g('DESTSHARED') or '', 'libs': [p for p in libs if os.path.exists(p)],\n"
    "  'version': '%d.%d.%d' % sys.version_info[:3]}))\n"
)


@dataclass(frozen=True)
class Interpreter:
    """The Python a sandbox runs, and the host paths it needs (bound read-only at the same place)."""

    executable: str
    binds: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class Runtime:
    """What a sandboxed run gets on this machine (see the module docstring)."""

    boundary: bool
    """bubblewrap works here: runs are isolated by namespaces and a minimal read-only root."""
    strong: bool
    """``boundary``, and the kernel enforces the process limit (the sandbox does not run as host root)."""
    detail: str
    """Plain words: what the sandbox is, or what is weaker and why."""
    bwrap: str | None = None
    interpreter: Interpreter | None = None
    run_as: int | None = None
    """Host uid bwrap is started as (``SANDBOX_UID`` when this process is root), None for unchanged."""
    disable_userns: bool = False
    tmpfs_size: bool = False
    """Whether bwrap can cap the size of the private ``/tmp`` (``--size``)."""


def _readable_by_others(path: str) -> bool:
    """Whether a uid that owns nothing can reach and read ``path`` (every parent traversable by others)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR else 0)
    if st.st_mode & need != need:
        return False
    parent = os.path.dirname(real)
    while True:
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if parent == os.path.dirname(parent):
            return True
        parent = os.path.dirname(parent)


def _describe(exe: str) -> Interpreter | None:
    try:
        out = subprocess.run([exe, "-I", "-S", "-c", _INFO], capture_output=True, timeout=20, env={}, check=True)
        info = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if tuple(int(x) for x in str(info["version"]).split(".")[:2]) < (3, 8):
        return None  # the boot and the harness need audit hooks and Python 3.8 syntax
    binds: list[str] = []
    for p in [info["exe"], info["stdlib"], info["dynload"], *info["libs"]]:
        if p and os.path.exists(p) and not any(p == b or p.startswith(b + os.sep) for b in [*binds, *_SYSTEM_LIBS]):
            binds.append(p)
    return Interpreter(executable=info["exe"], binds=tuple(binds), version=info["version"])


def _interpreters() -> list[str]:
    found: list[str] = []
    for p in (getattr(sys, "_base_executable", ""), sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if p and os.path.exists(p) and os.path.realpath(p) not in found:
            found.append(os.path.realpath(p))
    return found


def bwrap_command(
    rt: Runtime, argv: list[str], *, data: list[tuple[int, str]], tmp_bytes: int, env: dict[str, str]
) -> list[str]:
    """The bwrap command running ``argv`` (interpreter first) with each ``(fd, name)`` of ``data`` copied
    into a read-only file ``SANDBOX_DIR/name``; ``tmp_bytes`` caps the writable ``/tmp``."""
    assert rt.bwrap is not None and rt.interpreter is not None
    cmd = [rt.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]  # fmt: skip
    if rt.disable_userns:
        cmd.append("--disable-userns")
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    for p in _SYSTEM_LIBS:
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            cmd += ["--ro-bind", p, p]
    for p in rt.interpreter.binds:
        cmd += ["--ro-bind", p, p]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    if rt.tmpfs_size:
        cmd += ["--size", str(tmp_bytes)]
    cmd += ["--tmpfs", SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    for fd, name in data:
        cmd += ["--ro-bind-data", str(fd), f"{SANDBOX_DIR}/{name}"]
    return [*cmd, "--remount-ro", "/", *argv]


def _popen_user(run_as: int | None) -> dict[str, object]:
    return {} if run_as is None else {"user": run_as, "group": run_as, "extra_groups": []}


def _try(rt: Runtime) -> str | None:
    """None when a trial run works, else what went wrong."""
    assert rt.interpreter is not None
    cmd = bwrap_command(rt, [rt.interpreter.executable, "-I", "-S", "-c", "print('ok')"], data=[],
                        tmp_bytes=1 << 20, env={"LANG": "C.UTF-8"})  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
                             **_popen_user(rt.run_as))  # type: ignore[call-overload]  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if out.returncode == 0 and out.stdout.strip() == b"ok":
        return None
    return (out.stderr.decode("utf-8", "replace").strip() or f"exit status {out.returncode}")[-300:]


def _weak(detail: str, interp: Interpreter | None = None) -> Runtime:
    return Runtime(boundary=False, strong=False, detail=detail, interpreter=interp)


@functools.lru_cache(maxsize=1)
def runtime() -> Runtime:
    """Probe (once per process) what isolation sandboxed runs get here."""
    own = _describe(os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable))
    if not sys.platform.startswith("linux"):
        return _weak(f"no bubblewrap on {sys.platform}: audit hook and rlimits only, not a boundary", own)
    exe = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)
    if exe is None:
        return _weak("bubblewrap (bwrap) is not installed: audit hook and rlimits only, not a boundary "
                     "(install the 'bubblewrap' package)", own)  # fmt: skip
    try:
        helptext = subprocess.run([exe, "--help"], capture_output=True, timeout=10).stdout.decode()
    except (OSError, subprocess.SubprocessError) as exc:
        return _weak(f"bwrap does not run ({exc}): audit hook and rlimits only", own)
    root = os.geteuid() == 0
    interp: Interpreter | None = None
    for path in _interpreters():
        cand = own if own is not None and path == own.executable else _describe(path)
        if cand is not None and (not root or all(_readable_by_others(b) for b in cand.binds)):
            interp = cand
            break
    run_as = SANDBOX_UID if root and interp is not None else None
    interp = interp or own
    if interp is None:
        return _weak("no Python interpreter could be described for the sandbox")
    rt = Runtime(boundary=True, strong=run_as is not None or not root, detail="", bwrap=exe, interpreter=interp,
                 run_as=run_as, disable_userns="--disable-userns" in helptext, tmpfs_size="--size" in helptext)
    problem = _try(rt)
    if problem is not None and rt.disable_userns:
        rt = replace(rt, disable_userns=False)
        problem = _try(rt)
    if problem is not None:
        return _weak(f"bwrap cannot build a sandbox here ({problem}): audit hook and rlimits only", own)
    who = f"as uid {run_as}" if run_as is not None else ("as root (no interpreter readable by uid 65534, so the "
                                                         "kernel does not enforce the process limit)" if root
                                                         else f"as uid {os.geteuid()}")  # fmt: skip
    detail = (f"bubblewrap {exe}: new user/pid/net/ipc/uts/mount namespaces, read-only system libraries and "
              f"Python {interp.version} ({interp.executable}), private /tmp, {who}")  # fmt: skip
    return replace(rt, detail=detail)


@functools.lru_cache(maxsize=1)
def unshare_prefix() -> tuple[str, ...]:
    """A weak sandbox's ``unshare`` command prefix: network (and PID) namespaces where they work, else ()."""
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


def sandbox_status() -> dict[str, object]:
    """The probe's findings, for ``genesis-ps doctor`` (no candidate code runs)."""
    rt = runtime()
    return {
        "boundary": "bwrap" if rt.boundary else "none",
        "strong": rt.strong,
        "detail": rt.detail,
        "interpreter": rt.interpreter.executable if rt.interpreter else None,
        "run_as_uid": rt.run_as,
    }
