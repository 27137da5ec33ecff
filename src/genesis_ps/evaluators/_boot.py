"""The first code a sandboxed interpreter runs (its source is copied into the sandbox; it is never imported).

Run as ``python -I -S -B _boot.py CONFIG_JSON``. Before any candidate code: closes every inherited file
descriptor but stdin/stdout/stderr and the result channel, caps CPU, address space, file size, open files,
core size and processes with ``setrlimit`` (soft = hard, so they cannot be raised; CPU gets SIGXCPU at
the limit and SIGKILL one second later), moves into the writable
directory, installs an audit hook, then runs ``main.py`` as ``__main__`` with ``SANDBOX_CHANNEL_FD`` in its
globals. The audit hook blocks non-AF_UNIX sockets, name lookups, starting processes beyond
``max_processes``, writes outside the writable directory, ``ctypes`` symbol lookups, raising rlimits and
signalling other processes, and reports what it blocked on stderr. It catches the accidents of generated
code and explains them; it is not the boundary (code can get around an audit hook; bubblewrap's
namespaces and read-only root are what hold).
Standard library only, and no syntax newer than Python 3.8: the interpreter may not be ours.
"""

import json
import os
import resource
import runpy
import sys


def _boot(cfg: dict) -> None:  # type: ignore[type-arg]
    channel = int(cfg["channel_fd"])
    keep = sorted({0, 1, 2, channel} - {-1})
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 4096)

    def cap(which: int, value: int, hard: int = -1) -> None:
        try:
            resource.setrlimit(which, (value, value if hard < 0 else hard))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)  # SIGXCPU at the limit, SIGKILL a second later
    cap(resource.RLIMIT_AS, cfg["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, cfg["max_file_bytes"])
    cap(resource.RLIMIT_NOFILE, cfg["max_open_files"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NPROC, cfg["nproc"])
    root = os.path.realpath(cfg["root"])
    os.chdir(root)
    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    _install_guard(root, cfg["max_processes"], cfg["mark"])
    runpy.run_path(os.path.join(root, "main.py"), init_globals={"SANDBOX_CHANNEL_FD": channel}, run_name="__main__")


def _install_guard(root: str, max_processes: int, mark: str) -> None:
    me = os.getpid()
    procs = [0]
    writing_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    path_events = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                   "os.symlink", "os.link", "os.rename", "shutil.rmtree", "shutil.move", "os.setxattr",
                   "os.removexattr", "os.mkfifo", "os.mknod", "sqlite3.connect"}  # fmt: skip
    proc_events = {"os.fork", "os.forkpty", "subprocess.Popen", "os.posix_spawn", "os.spawn", "os.system", "os.exec"}

    def violation(kind: str, detail: str) -> None:
        try:
            os.write(2, (f"\n{mark} {kind} {detail}\n").encode("utf-8", "replace"))
        except OSError:
            pass
        raise PermissionError(f"sandbox: {kind} blocked ({detail})")

    def inside(p: object) -> bool:
        if isinstance(p, int):
            return True
        try:
            full = os.path.realpath(os.path.join(os.getcwd(), os.fsdecode(p)))  # type: ignore[arg-type]
        except Exception:
            return False
        return full == root or full.startswith(root + os.sep) or full == "/dev/null" or p in (":memory:", "")

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if event == "open":
            path, mode, flags = ((*tuple(args), None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & writing_flags)
            if writing and path is not None and not inside(path):
                violation("write_outside", repr(path))
        elif event in path_events:
            for p in [a for a in args if isinstance(a, (str, bytes, os.PathLike))][:2]:
                if not inside(p):
                    violation("write_outside", f"{event} {p!r}")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] != 1:
                violation("network", f"socket family {args[1]!r}")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            violation("network", event)
        elif event in proc_events:
            procs[0] += 1
            if procs[0] > max_processes:
                violation("process_limit", event)
        elif event in ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata"):
            violation("ctypes", event)
        elif event in ("resource.setrlimit", "resource.prlimit"):
            violation("rlimit", event)
        elif event in ("os.kill", "os.killpg") and args and args[0] not in (0, me):
            violation("signal", event)

    sys.addaudithook(hook)


if __name__ == "__main__":
    _config = json.loads(sys.argv[1])
    del sys.argv[1]
    _boot(_config)
