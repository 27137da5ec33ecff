"""SICA loop: stops at the threshold and at the cap, survives junk critiques, and power mode is cheaper
in loop calls where the power-sampled draft is already good."""

from __future__ import annotations

import itertools

import pytest

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators import MathAnswerEvaluator, Score
from genesis_ps.generation import generate, model_generator
from genesis_ps.loops import SicaConfig, compare_modes, parse_critique, run_sica
from genesis_ps.sampling import Prompt, SamplerParams
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.testing import ScriptedModel
from genesis_ps.testing.toys import sharp_toy

TASK = "What is 2 + 2?"
PARAMS = SamplerParams(method="imh", n_mcmc=2, max_new_tokens=32, seed=0)
MATH = MathAnswerEvaluator("4")


def scripted(
    draft: str = "The answer is 3.",
    refine: str = "The answer is 4.",
    critique: str = "SCORE: 2\nVERDICT: REVISE\nISSUES:\n- 2 + 2 is not 3",
    repair: str | None = None,
) -> ScriptedModel:
    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        if "not in the required format" in text:
            return repair if repair is not None else critique
        if "Critique the proposed answer" in text:
            return critique
        if "Previous answer" in text:
            return refine
        return draft

    return ScriptedModel(respond)


async def test_stops_at_the_threshold_with_an_evaluator() -> None:
    model = scripted()
    res = await run_sica(TASK, model_generator(model, PARAMS), evaluator=MATH)
    assert res.stop_reason == "threshold" and res.score == 1.0 and res.score_source == "evaluator"
    assert [s.kind for s in res.history] == ["draft", "critique", "refine"]
    assert res.iterations == 2 and res.model_calls == 3 == len(model.calls)
    assert res.text == "The answer is 4."
    assert res.tokens_generated == sum(s.tokens_generated for s in res.history)
    assert res.history[1].score == pytest.approx(0.2)  # the critique's own score is kept on its step
    assert "2 + 2 is not 3" in model.calls[2].flat_text()  # the critique reached the refinement


async def test_stops_at_the_cap() -> None:
    model = scripted(refine="Still 3, the answer is 3.")
    res = await run_sica(TASK, model_generator(model, PARAMS), evaluator=MATH, config=SicaConfig(max_iterations=3))
    assert res.stop_reason == "cap" and res.iterations == 3 and res.score == 0.0
    assert res.model_calls == 1 + 2 * 2  # draft, then (critique, refine) twice; the last answer is only scored


async def test_first_draft_good_enough_costs_one_call() -> None:
    res = await run_sica(TASK, model_generator(scripted(draft="2+2 = \\boxed{4}"), PARAMS), evaluator=MATH)
    assert res.stop_reason == "threshold" and res.model_calls == 1 and res.iterations == 1


async def test_junk_critique_is_retried_then_recorded_as_failure() -> None:
    model = scripted(critique="lol idk", refine="The answer is 4.")
    res = await run_sica(TASK, model_generator(model, PARAMS), evaluator=MATH)
    kinds = [s.kind for s in res.history]
    assert kinds == ["draft", "critique", "critique_repair", "refine"]
    assert res.history[1].error == "malformed critique"
    assert res.history[2].error == "malformed critique (after retries)"
    assert res.stop_reason == "threshold"  # the evaluator's own reason still drove the refinement
    # Without an evaluator a junk critique cannot score anything: the loop stops and says so.
    res = await run_sica(TASK, model_generator(scripted(critique="lol idk"), PARAMS))
    assert res.stop_reason == "critique_failed" and res.score is None and res.score_source == "critique"


async def test_repaired_critique_is_used_without_an_evaluator() -> None:
    model = scripted(critique="this is bad", repair='{"score": "9/10", "verdict": "pass", "issues": []}')
    res = await run_sica(TASK, model_generator(model, PARAMS))
    assert res.stop_reason == "threshold" and res.score == pytest.approx(0.9) and res.score_source == "critique"
    assert [s.kind for s in res.history] == ["draft", "critique", "critique_repair"]


def test_critique_parser_shapes() -> None:
    assert parse_critique("SCORE: 7\nVERDICT: REVISE\nISSUES:\n- a\n- b").issues == ("a", "b")
    assert parse_critique("I'd give it 3 out of 10.").score == pytest.approx(0.3)
    assert parse_critique("Rating = 70%").score == pytest.approx(0.7)
    j = parse_critique("{'score': 8, 'verdict': 'pass',}")
    assert j.score == pytest.approx(0.8) and j.verdict == "pass" and j.repaired
    assert not parse_critique("banana").ok and not parse_critique("").ok
    assert parse_critique("Score: 4000").score is None  # out of any scale: not invented


class _IsBC:
    name = "is_bc"

    def evaluate(self, text: str, context: object = None) -> Score:
        return Score(1.0 if text == "BC" else 0.0, details={"reason": f"{text!r} is not BC"}, evaluator=self.name)


def seeded(model: object, params: SamplerParams, start: int) -> object:
    """A generator giving each call its own seed (reproducible, yet not the same sample every call)."""
    seeds = itertools.count(start * 1000)

    async def gen(prompt: Prompt, *, power: bool) -> GenerationResult:
        p = params.with_(seed=next(seeds))
        return await generate(model, prompt, p if power else p.with_(method="single"), power=power)  # type: ignore[arg-type]

    return gen


async def test_power_mode_needs_fewer_loop_calls_on_a_real_toy_model() -> None:
    """On the sharp toy, p^4 puts ~90% on 'BC' while single-shot sampling finds it 38% of the time, so the
    power-sampled first draft passes more often and the loop needs fewer calls (it spends more tokens
    per call: requests and tokens are reported too)."""
    params = SamplerParams(method="mh", alpha=4.0, n_mcmc=4, block_size=1, max_new_tokens=4)
    cfg = SicaConfig(max_iterations=4, threshold=1.0, power_max_iterations=4)
    calls = {"iterative": 0, "power": 0}
    scores = {"iterative": 0.0, "power": 0.0}
    first_pass = {"iterative": 0, "power": 0}
    for run in range(12):
        for mode in ("iterative", "power"):
            res = await run_sica(
                "emit",
                seeded(sharp_toy(), params, run),
                evaluator=_IsBC(),  # type: ignore[arg-type]
                mode=mode,
                config=cfg,
            )  # type: ignore[arg-type]
            calls[mode] += res.model_calls
            scores[mode] += res.score or 0.0
            first_pass[mode] += res.history[0].score == 1.0
            assert res.requests >= res.model_calls and res.tokens_generated > 0
            assert res.history[0].kind == ("power_draft" if mode == "power" else "draft")
            assert res.history[0].method == ("mh" if mode == "power" else "single")
    assert first_pass["power"] > first_pass["iterative"]
    assert calls["power"] < calls["iterative"]
    assert scores["power"] >= scores["iterative"]


async def test_power_mode_falls_back_visibly_and_power_only_stops_after_one_pass() -> None:
    model = scripted(draft="The answer is 4.")
    res = await run_sica(
        TASK,
        model_generator(model, PARAMS, enabled=False),
        evaluator=MATH,
        mode="power",
        config=SicaConfig(power_verify=False),
    )
    assert res.stop_reason == "power_only" and res.model_calls == 1 and res.fallbacks == ["flag_off"]
    assert res.score == 1.0


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        SicaConfig(threshold=2)
    with pytest.raises(ConfigError, match="max_iterations"):
        SicaConfig(max_iterations=0)


async def test_bad_mode_and_task_raise_before_model_work() -> None:
    model = scripted()
    with pytest.raises(ConfigError, match="mode"):
        await run_sica(TASK, model_generator(model, PARAMS), mode="turbo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="task"):
        await run_sica("  ", model_generator(model, PARAMS))
    assert model.calls == []


async def test_compare_modes_reports_both_on_the_same_task() -> None:
    both = await compare_modes(TASK, model_generator(scripted(), PARAMS), evaluator=MATH)
    assert set(both) == {"iterative", "power"}
    assert both["iterative"].model_calls == 3 and both["iterative"].history[0].method == "single"
    assert both["power"].history[0].kind == "power_draft" and both["power"].history[0].method == "imh"
