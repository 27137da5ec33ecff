"""Decode-time matrix products with a GGUF model's weights kept in their quantised blocks (Q4_1, Q8_0).

A model loaded from a GGUF file is dequantised to fp32 by transformers: every weight is ``d·q + min`` of
its block. Decoding on CPU is bound by memory bandwidth, and the fp32 copy is 4–8× larger than the
blocks it came from. :class:`BlockMatrix` multiplies fp32 activations by the *blocks* (``blockmm.c``:
AVX2/FMA, dequantising each weight in registers with the same single rounding as the GGUF reader), so the
weights used are bit for bit the model's fp32 weights and only the order of the fp32 sums changes — the
log-probabilities stay those of the model. :func:`match_gguf` proves that per matrix: it dequantises each
block matrix and keeps it only when it equals the model's fp32 weight exactly (``torch.equal``), after a
row permutation if the loader reordered rows (transformers does, for Llama's q/k projections).

The C kernels (``blockmm.c``, and ``cowattn.c``: decode attention over copy-on-write KV, used by
:class:`~genesis_ps.providers.local.cow.SharedKV`) are compiled once with the system C compiler (``$CC`` or
``cc``) into one library in the cache directory (``$GENESIS_PS_CACHE_DIR`` or ``~/.cache/genesis_ps``) and
loaded with ctypes. Without a compiler, on a CPU
lacking AVX2/FMA/F16C, or off x86-64 Linux, :func:`library` returns None (the reason is in
:func:`unavailable_reason`) and the fp32 weights and torch's attention are used — nothing else changes.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from genesis_ps.providers.local.paths import cache_dir

__all__ = ["BlockMatrix", "library", "match_gguf", "status", "unavailable_reason"]

_SOURCES = tuple(Path(__file__).with_name(n) for n in ("blockmm.c", "cowattn.c", "pool.c"))
_HEADERS = (Path(__file__).with_name("pool.h"),)
_ISA_FLAGS = ["-mavx2", "-mfma", "-mf16c"]
_WIDE_FLAGS = ["-mavx512f", "-mavx512vl"]
"""Added where the CPU has AVX-512F and VL: 32 vector registers for the eight-row kernel."""
KINDS = {"Q4_1": (0, 20), "Q8_0": (1, 34)}
"""Supported GGUF block types: (kernel code, bytes per block of 32 weights)."""

_lock = threading.Lock()
_state: dict[str, Any] = {}


@functools.cache
def _cpu_flags() -> frozenset[str] | str:
    """The CPU's feature flags, or why they cannot be read (read once)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"block kernels need x86-64 Linux, this is {platform.system()} {platform.machine()}"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError as e:
        return f"cannot read /proc/cpuinfo: {e}"
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _cpu_ok() -> str | None:
    flags = _cpu_flags()
    if isinstance(flags, str):
        return flags
    missing = [f for f in ("avx2", "fma", "f16c") if f not in flags]
    return f"the CPU lacks {', '.join(missing)}" if missing else None


def _flags() -> list[str]:
    """Compiler flags: AVX2/FMA/F16C, plus AVX-512F/VL where the CPU has them (part of the library's name, so
    a cache shared with another CPU builds its own)."""
    cpu = _cpu_flags()
    wide = not isinstance(cpu, str) and {"avx512f", "avx512vl"} <= cpu
    return ["-O3", *_ISA_FLAGS, *(_WIDE_FLAGS if wide else []), "-pthread", "-shared", "-fPIC"]


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _turned_off() -> bool:
    return os.environ.get("GENESIS_PS_BLOCK_KERNELS", "1").strip().lower() in ("0", "false", "no", "off")


def _target() -> Path:
    text = b"".join(p.read_bytes() for p in (*_SOURCES, *_HEADERS)) + " ".join(_flags()).encode()
    digest = hashlib.sha256(text).hexdigest()[:16]
    return cache_dir() / "kernels" / f"blockmm-{digest}.so"


def _compile(target: Path) -> str | None:
    """Build the kernel into ``target``; returns an error string, or None on success."""
    cc = _compiler()
    if not cc:
        return "no C compiler found (set $CC or install gcc)"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *_flags(), "-o", tmp, *map(str, _SOURCES), "-lm"], capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
        if r.returncode == 0:
            os.replace(tmp, target)
            return None
        err = (r.stderr or r.stdout).strip()[-300:]
        return f"compiling the kernels with {cc} failed: {err}"
    except (OSError, subprocess.SubprocessError) as e:
        return f"compiling the kernels failed: {e}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def library() -> Any:
    """The loaded kernel library (compiled on first use), or None when unavailable (see
    :func:`unavailable_reason`). ``GENESIS_PS_BLOCK_KERNELS=0`` turns it off."""
    with _lock:
        if "lib" in _state:
            return _state["lib"]
        _state["lib"], _state["why"] = None, None
        if _turned_off():
            _state["why"] = "turned off by GENESIS_PS_BLOCK_KERNELS"
            return None
        why = _cpu_ok()
        if why is None:
            target = _target()
            if not target.is_file():
                why = _compile(target)
            if why is None:
                try:
                    lib = ctypes.CDLL(str(target))
                    i64, ptr = ctypes.c_int64, ctypes.c_void_p
                    lib.blockmm.argtypes = [ctypes.c_int, ptr, i64, i64, ptr, i64, i64, ptr, i64, ctypes.c_int]
                    lib.dequantize.argtypes = [ctypes.c_int, ptr, i64, i64, ptr]
                    lib.cow_attend.argtypes = [ptr, i64, i64, i64, i64, ptr, ptr, i64, i64, ptr, ptr, ptr, ptr,
                                               i64, i64, ctypes.c_float, ptr, ctypes.c_int]  # fmt: skip
                    _state["lib"] = lib
                except OSError as e:
                    why = f"cannot load {target}: {e}"
        _state["why"] = why
        return _state["lib"]


def status() -> dict[str, Any]:
    """What :func:`library` would do, without compiling or loading anything (for ``genesis-ps doctor``):
    ``{"usable": bool, "detail": str}``."""
    if _turned_off():
        return {"usable": False, "detail": "turned off by GENESIS_PS_BLOCK_KERNELS"}
    why = _cpu_ok()
    if why is not None:
        return {"usable": False, "detail": why}
    target = _target()
    if target.is_file():
        return {"usable": True, "detail": f"compiled: {target}"}
    cc = _compiler()
    if not cc:
        return {"usable": False, "detail": "no C compiler found (set $CC or install gcc)"}
    return {"usable": True, "detail": f"compiled with {cc} on first use into {target.parent}"}


def unavailable_reason() -> str | None:
    """Why :func:`library` returned None (None when it is available or not yet tried)."""
    return _state.get("why")


class BlockMatrix:
    """An ``(n, k)`` weight matrix held as GGUF blocks; ``m(x)`` is ``x @ W.T`` for fp32 ``x`` of shape
    ``(rows, k)`` on CPU, computed by the kernel."""

    def __init__(self, blocks: Any, kind: str, k: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unsupported block type {kind!r}; supported: {', '.join(KINDS)}")
        code, size = KINDS[kind]
        if k % 32 or blocks.dim() != 2 or blocks.shape[1] != k // 32 * size:
            raise ValueError(f"blocks of shape {tuple(blocks.shape)} do not hold {kind} rows of length {k}")
        self.blocks, self.kind, self.code, self.k, self.n = blocks.contiguous(), kind, code, k, int(blocks.shape[0])
        self.lib = library()
        if self.lib is None:
            raise RuntimeError(f"block kernels unavailable: {unavailable_reason()}")

    def __call__(self, x: Any, threads: int | None = None) -> Any:
        """``x @ W.T`` on ``threads`` threads of the kernel's own pool (default: torch's thread count)."""
        import torch

        x = x.contiguous()
        rows = x.numel() // self.k
        y = torch.empty((*x.shape[:-1], self.n), dtype=torch.float32)
        rc = self.lib.blockmm(self.code, self.blocks.data_ptr(), self.n, self.k, x.data_ptr(), rows, self.k,
                              y.data_ptr(), self.n, threads or torch.get_num_threads())
        if rc != 0:  # pragma: no cover - shapes are checked at construction
            raise RuntimeError(f"blockmm failed with code {rc}")
        return y

    def dequantize(self) -> Any:
        """The fp32 ``(n, k)`` matrix these blocks hold (exactly what the kernel multiplies by)."""
        import torch

        out = torch.empty((self.n, self.k), dtype=torch.float32)
        self.lib.dequantize(self.code, self.blocks.data_ptr(), self.n, self.k, out.data_ptr())
        return out

    def rows(self, index: Any) -> BlockMatrix:
        return BlockMatrix(self.blocks[index], self.kind, self.k)

    @staticmethod
    def stack(mats: list[BlockMatrix]) -> BlockMatrix:
        """One matrix with the rows of ``mats`` one after another (they must share kind and k)."""
        import torch

        if len({(m.kind, m.k) for m in mats}) != 1:
            raise ValueError("stacked block matrices must share block type and row length")
        return BlockMatrix(torch.cat([m.blocks for m in mats], 0), mats[0].kind, mats[0].k)


def _row_permutation(have: Any, want: Any) -> Any:
    """Index ``p`` with ``have[p]`` equal to ``want`` row for row (exact bytes), or None."""
    import torch

    where: dict[bytes, int] = {}
    for i, row in enumerate(have.numpy()):
        where.setdefault(row.tobytes(), i)
    idx = [where.get(row.tobytes()) for row in want.numpy()]
    if any(i is None for i in idx):
        return None
    return torch.tensor(idx, dtype=torch.long)


def match_gguf(model: Any, path: str | os.PathLike[str]) -> tuple[dict[str, BlockMatrix], str | None]:
    """Block matrices from the GGUF file at ``path`` for ``model``'s linear weights, keyed by module name
    (``model.layers.0.self_attn.q_proj``, ``lm_head`` …), each proven equal to the module's fp32 weight.

    Returns ``(matrices, None)``, or ``({}, reason)`` when none can be used. Weights of other block types,
    of other precision than the model's (not fp32), or on another device are simply not matched.
    """
    import torch

    if library() is None:
        return {}, unavailable_reason()
    try:
        import gguf
    except ImportError:
        return {}, "the gguf package is not installed"
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as e:
        return {}, f"cannot read {path}: {e}"
    arch_field = reader.fields.get("general.architecture")
    names = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    arch = names.get(str(arch_field.contents())) if arch_field is not None else None
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if arch is None or n_layers is None:
        return {}, "unknown GGUF architecture"
    name_map = gguf.get_tensor_name_map(arch, int(n_layers))
    tensors = {t.name: t for t in reader.tensors}
    found: dict[str, BlockMatrix] = {}
    for mod_name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if not isinstance(mod, torch.nn.Linear) or w is None or w.dtype != torch.float32 or w.device.type != "cpu":
            continue
        base = name_map.get_name(mod_name)
        candidates = [base, "token_embd"] if mod_name.endswith("lm_head") else [base]
        for cand in candidates:
            t = tensors.get(f"{cand}.weight") if cand else None
            if t is None or t.tensor_type.name not in KINDS:
                continue
            blocks = torch.from_numpy(t.data.copy())
            if blocks.dim() != 2 or blocks.shape[0] != w.shape[0] or w.shape[1] % 32:
                continue
            bm = BlockMatrix(blocks, t.tensor_type.name, int(w.shape[1]))
            deq, want = bm.dequantize(), w.detach()
            if torch.equal(deq, want):
                found[mod_name] = bm
                break
            perm = _row_permutation(deq, want)
            if perm is not None:
                found[mod_name] = bm.rows(perm)
                break
    return found, None if found else "no GGUF block matrix equals a weight of the model"
