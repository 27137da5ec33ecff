"""Where the local wing keeps what it builds: converted embedded weights and compiled kernels."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$GENESIS_PS_CACHE_DIR``, else ``~/.cache/genesis_ps``."""
    env = os.environ.get("GENESIS_PS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "genesis_ps"
