"""SE-Darwin: trajectories, lineage, weighted parent selection, operators and the evolution loop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from scipy.stats import chisquare

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators import CodeEvaluator, SandboxLimits, Score
from genesis_ps.generation import model_generator
from genesis_ps.operators import (
    Archive,
    DarwinContext,
    EvolutionConfig,
    Trajectory,
    evolve,
    initial,
    parse_strategy,
    power_sampling,
    recombination,
    refinement,
    revision,
)
from genesis_ps.sampling import Prompt, SamplerParams
from genesis_ps.testing import ScriptedModel

BUGGY = "STRATEGY: add the numbers\n```python\ndef add(a, b):\n    return a - b - 1\n```"
FIXED = "**Strategy:** use the + operator\n```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "def test_add():\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
PLAIN = SamplerParams(method="imh", n_mcmc=2, max_new_tokens=32, seed=0)


def by_operator(prompt: Prompt) -> str:
    """Initial attempts are buggy; any operator that sees a previous attempt fixes it."""
    text = prompt.flat_text()
    return FIXED if ("previous attempt failed" in text or "Candidate A" in text or "best solution" in text) else BUGGY


class KeywordEvaluator:
    """Cheap stand-in for the sandbox: 1.0 when the candidate adds, else a fixed low score."""

    name = "keyword"

    def __init__(self, low: float = 0.0) -> None:
        self.low = low

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        return Score(1.0 if "a + b" in text else self.low, details={"reason": "wrong sum"}, evaluator=self.name)


class Broken:
    name = "broken"

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        raise RuntimeError("evaluator crashed")


def traj(tid: str, score: float | None, gen: int = 0, parents: tuple[str, ...] = ()) -> Trajectory:
    op = "initial" if not parents else "refinement"
    return Trajectory(id=tid, candidate="x", score=score, operator=op, parent_ids=parents, strategy="s", generation=gen)


def test_trajectory_and_archive_validate_lineage() -> None:
    a = Archive()
    a.add(traj("t1", 0.5))
    with pytest.raises(ConfigError, match="parent_ids"):
        a.add(traj("t2", 0.5, 1, ("nope",)))
    with pytest.raises(ConfigError, match="id"):
        a.add(traj("t1", 0.1))
    with pytest.raises(ConfigError, match="operator"):
        Trajectory(id="x", candidate="", score=0, operator="mutate", parent_ids=(), strategy="", generation=0)
    a.add(traj("t2", 0.7, 1, ("t1",)))
    a.add(traj("t3", 0.9, 2, ("t2", "t1")))
    assert a.lineage("t3") == ["t2", "t1"]
    assert a.best() is not None and a.best().id == "t3"  # type: ignore[union-attr]


def test_parent_selection_follows_score_and_use_weights() -> None:
    a = Archive(floor=0.05)
    for i, s in enumerate([0.0, 0.2, 0.5, 1.0, None]):
        a.add(traj(f"t{i}", s))
    a.uses["t3"] = 3  # the best was already used three times: its weight is quartered
    w = a.weights()
    assert w["t3"] == pytest.approx(1.05 / 4) and w["t4"] == pytest.approx(0.05)  # failed eval counts as 0
    rng = np.random.default_rng(7)
    n = 4000
    counts = Counter(a.select(rng, record=False)[0].id for _ in range(n))
    ids = list(w)
    expected = np.array([w[i] for i in ids]) / sum(w.values()) * n
    assert chisquare([counts[i] for i in ids], expected).pvalue > 1e-3
    # With recording, a parent picked over and over loses weight, so others get their turn.
    b = Archive()
    b.add(traj("good", 1.0))
    b.add(traj("weak", 0.3))
    picks = [b.select(np.random.default_rng(i))[0].id for i in range(40)]
    assert b.uses["good"] + b.uses["weak"] == 40
    assert picks.count("weak") >= 5 and b.uses["good"] > b.uses["weak"]


async def test_operators_build_well_formed_trajectories_with_lineage() -> None:
    gen = model_generator(ScriptedModel(by_operator), PLAIN)
    ctx = DarwinContext(task="Write add(a, b).", generate=gen, evaluator=KeywordEvaluator())
    first = await initial(ctx, 0)
    assert first.operator == "initial" and first.parent_ids == () and first.score == 0.0
    assert first.candidate == "def add(a, b):\n    return a - b - 1" and first.strategy == "add the numbers"
    assert first.method == "single" and first.fallback is None and first.tokens_generated > 0
    rev = await revision(ctx, first, 1)
    assert rev.operator == "revision" and rev.parent_ids == (first.id,) and rev.score == 1.0
    assert rev.strategy == "use the + operator" and rev.generation == 1
    rec = await recombination(ctx, rev, first, 2)
    assert rec.parent_ids == (rev.id, first.id) and rec.operator == "recombination"
    ref = await refinement(ctx, rec, 3)
    assert ref.parent_ids == (rec.id,) and ref.operator == "refinement"
    ps = await power_sampling(ctx, ref, 4)
    assert ps.operator == "power_sampling" and ps.parent_ids == (ref.id,)
    assert ps.method == "imh" and ps.fallback is None and ps.requests >= 1
    assert len({first.id, rev.id, rec.id, ref.id, ps.id}) == 5
    noparse = Trajectory(id="z", candidate="", score=None, operator="initial", parent_ids=(), strategy="", generation=0)
    assert noparse.fitness == 0.0 and parse_strategy("no strategy here") is None


async def test_power_operator_falls_back_visibly() -> None:
    none = model_generator(ScriptedModel([FIXED], logprobs="none"), PLAIN)
    ctx = DarwinContext(task="t", generate=none, evaluator=KeywordEvaluator())
    assert (await power_sampling(ctx, None, 0)).fallback == "no_logprobs"
    off = model_generator(ScriptedModel([FIXED]), PLAIN, enabled=False)
    t = await power_sampling(DarwinContext(task="t", generate=off, evaluator=KeywordEvaluator()), None, 0)
    assert t.fallback == "flag_off" and t.method == "single"


async def test_failed_evaluation_is_recorded_not_zero() -> None:
    ctx = DarwinContext(task="t", generate=model_generator(ScriptedModel([BUGGY]), PLAIN), evaluator=Broken())
    t = await initial(ctx)
    assert t.score is None and "evaluator crashed" in t.score_details["error"]


async def test_evolution_reaches_target_in_the_sandbox_with_correct_lineage() -> None:
    ev = CodeEvaluator(TESTS, limits=SandboxLimits(timeout_s=3.0))
    model = ScriptedModel(by_operator)
    cfg = EvolutionConfig(max_generations=3, initial_population=1, offspring=2, power=False, seed=1)
    res = await evolve("Write add(a, b).", model_generator(model, PLAIN), ev, config=cfg)
    assert res.stop_reason == "target" and res.score == 1.0
    best = res.best
    assert best is not None and best.operator == "revision" and best.generation == 1
    parent = res.archive[best.parent_ids[0]]
    assert parent.score == 0.0 and parent.score_details["status"] == "failed"
    for t in res.archive:
        assert all(res.archive[p].generation <= t.generation for p in t.parent_ids)
    assert res.model_calls == len(res.archive) == len(model.calls) == 2
    assert res.tokens_generated == sum(t.tokens_generated for t in res.archive)


async def test_evolution_stops_at_the_generation_cap() -> None:
    gen = model_generator(ScriptedModel([BUGGY]), PLAIN)
    cfg = EvolutionConfig(max_generations=2, initial_population=2, offspring=3, power=True, seed=3)
    res = await evolve("t", gen, KeywordEvaluator(low=0.6), config=cfg)
    assert res.stop_reason == "generation_cap" and res.generations == 2
    assert len(res.archive) == 2 + 2 * 3
    ops = Counter(t.operator for t in res.archive)
    assert ops["power_sampling"] == 3 and ops["initial"] == 1  # first initial member + one per generation
    assert ops["revision"] == 0  # 0.6 is above failure_below: refinement / recombination only
    assert ops["recombination"] >= 1 and ops["refinement"] >= 1
    # Refinement polishes the best (all tie at 0.6, so the earliest); every parent reference is a use.
    assert {t.parent_ids for t in res.archive if t.operator == "refinement"} == {("t1",)}
    assert sum(res.archive.uses.values()) == sum(len(t.parent_ids) for t in res.archive)


async def test_evolution_stops_on_budget() -> None:
    gen = model_generator(ScriptedModel([BUGGY]), PLAIN)
    res = await evolve("t", gen, KeywordEvaluator(), config=EvolutionConfig(max_generations=10, max_calls=3))
    assert res.stop_reason == "budget" and res.model_calls == 3
    res = await evolve("t", gen, KeywordEvaluator(), config=EvolutionConfig(max_generations=10, max_tokens=1))
    assert res.stop_reason == "budget" and res.model_calls == 1


def test_bad_config_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match="max_calls"):
        EvolutionConfig(max_calls=0)
    with pytest.raises(ConfigError, match="target_score"):
        EvolutionConfig(target_score=1.5)
