"""The ``genesis-ps`` command. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genesis_ps._version import __version__
from genesis_ps.errors import GenesisError

__all__ = ["build_parser", "main"]

# module name -> it defines ``register(subparsers)``; each registered parser sets ``func(args) -> int``.
_COMMAND_MODULES = ("sample", "bench", "doctor", "graph", "run", "geometry", "softprompt")

_EXTRA_FOR = {
    "scipy": "bench", "matplotlib": "bench", "sympy": "math", "torch": "local", "transformers": "local",
    "gguf": "local", "accelerate": "local", "openai": "openai", "anthropic": "anthropic", "google": "gemini",
    "sklearn": "geometry", "yaml": "geometry", "psycopg": "postgres",
}  # fmt: skip
"""Optional packages the commands may need, and the extra that installs each."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genesis-ps", description=__doc__)
    parser.add_argument("--version", action="version", version=f"genesis-ps {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"genesis_ps.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GenesisError as e:
        print(f"genesis-ps: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        extra = _EXTRA_FOR.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"genesis-ps: error: this command needs {e.name}: pip install 'genesis_ps[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genesis-ps: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
