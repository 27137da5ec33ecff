"""The quality benchmark: task generation, answer checking, aggregation, and an embedded-model smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesis_ps.bench.arithmetic import extract_integer, make_problems
from genesis_ps.bench.math500 import check_answer, load_math500
from genesis_ps.bench.methods import parse_methods
from genesis_ps.bench.quality import QualityConfig, run_quality
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.testing import ScriptedModel

MATH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "math500" / "MATH500.json"


def test_problems_are_reproducible_and_correct() -> None:
    a = make_problems(5, seed=3)
    assert a == make_problems(5, seed=3) and a != make_problems(5, seed=4)
    for p in a:
        x, y = (int(t) for t in p.question.split(" + "))
        assert str(x + y) == p.answer and p.prompt.endswith(f"{p.question} =")
        assert p.prompt.count("\n") == 3  # three worked examples
    for p in make_problems(20, kind="sub2"):
        x, y = (int(t) for t in p.question.split(" - "))
        assert int(p.answer) == x - y >= 0


def test_extract_integer() -> None:
    assert extract_integer(" 68\n12 + 3 = 15") == "68"
    assert extract_integer(" 1,024 apples") == "1024"
    assert extract_integer("\nno number") is None
    assert extract_integer("") is None


def test_bad_task_options() -> None:
    with pytest.raises(ConfigError, match="kind"):
        make_problems(3, kind="mul9")
    with pytest.raises(ConfigError, match="n"):
        make_problems(0)


def test_math500_checking() -> None:
    assert check_answer("so the answer is \\boxed{\\frac{14}{3}}", "\\frac{14}{3}") == (True, "\\frac{14}{3}")
    assert check_answer("\\boxed{5}", "6")[0] is False
    assert check_answer("", "6") == (False, None)


@pytest.mark.skipif(not MATH.is_file(), reason="shared MATH500 data not present")
def test_load_math500_and_skip_bad(tmp_path: Path) -> None:
    probs, skipped = load_math500(MATH, n=3)
    assert len(probs) == 3 and skipped == []
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps([{"prompt": "1+1?", "answer": "2"}, {"prompt": 3}]))
    probs, skipped = load_math500(bad)
    assert len(probs) == 1 and len(skipped) == 1


def _answer_all(prompt: Prompt) -> str:
    q = (prompt.raw or "").rsplit("\n", 1)[-1].rstrip(" =")
    x, y = (int(t) for t in q.split(" + "))
    return f" {x + y}\n"


async def test_scripted_run_aggregates(tmp_path: Path) -> None:
    cfg = QualityConfig(n=6, methods=parse_methods("greedy,single"), seeds=3, out=str(tmp_path))
    rep = await run_quality(cfg, ScriptedModel(_answer_all))
    g, s = rep["methods"]["greedy"], rep["methods"]["single"]
    assert g["accuracy"] == 1.0 and g["samples_per_item"] == 1  # greedy runs once
    assert s["accuracy"] == 1.0 and s["pass_at_k"] == 1.0 and s["samples_per_item"] == 3
    assert s["distinct_answers_per_item"] == 1.0
    assert rep["baseline"] == "single"
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 6 + 18
    assert (tmp_path / "accuracy_vs_cost.png").is_file() and (tmp_path / "report.md").is_file()


async def test_wrong_answers_and_power_without_logprobs() -> None:
    rep = await run_quality(QualityConfig(n=4, methods=parse_methods("single")), ScriptedModel([" 0\n"]))
    assert rep["methods"]["single"]["accuracy"] == 0.0
    model = ScriptedModel(logprobs="none")
    with pytest.raises(ConfigError, match="methods"):
        await run_quality(QualityConfig(n=2, methods=parse_methods("single,power-smc")), model)
    assert model.calls == []
    with pytest.raises(ConfigError, match="seeds"):
        await run_quality(QualityConfig(n=2, seeds=0), ScriptedModel())


@pytest.mark.slow
def test_smoke_on_embedded_model(tmp_path: Path) -> None:
    """All five methods on the real embedded model with tiny parameters (seconds, not minutes)."""
    import asyncio

    pytest.importorskip("transformers")
    from genesis_ps.providers.local.embedded import load_embedded

    cfg = QualityConfig(
        n=2, seeds=2, out=str(tmp_path), params=SamplerParams(max_new_tokens=4, block_size=2, n_mcmc=1, n_particles=2)
    )
    rep = asyncio.run(run_quality(cfg, load_embedded()))
    ms = rep["methods"]
    assert set(ms) == {"greedy", "single", "low-temp", "power-mh", "power-smc"}
    assert all(a["fallbacks"] == 0 for a in ms.values())
    for name in ("single", "power-mh", "power-smc"):
        assert ms[name]["loglik_per_token"] < 0.0  # real log-probs from the model
    assert ms["power-mh"]["cost_multiplier"] > 1.0 and ms["single"]["cost_multiplier"] == 1.0
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (1 + 2 * 4)
