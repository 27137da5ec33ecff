"""The reasoning benchmark: scoring, exact call counts on a scripted model, bad data, methods skipped on a
provider without log-probs, regeneration from rows.jsonl, and an embedded-model smoke run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from genesis_ps.bench.reasoning_data import arithmetic_items, check_record, math500_items
from genesis_ps.bench.reasoning_report import claim_verdict, regenerate
from genesis_ps.bench.reasoning_run import ReasoningConfig, parse_methods, run_reasoning
from genesis_ps.bench.reasoning_stats import paired_difference_ci, reduction
from genesis_ps.cli import main
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams
from genesis_ps.sampling.protocol import LogprobKind
from genesis_ps.testing import ScriptedModel

ALL = ["cot", "sica", "sica-power", "sica-power-only", "bon", "self_consistency"]
PARAMS = SamplerParams(method="imh", n_mcmc=2, max_new_tokens=16)


def scripted(
    answer: str, critique: str = "SCORE: 2\nVERDICT: REVISE\nISSUES:\n- wrong", *, logprobs: LogprobKind = "exact"
) -> ScriptedModel:
    """Drafts and refinements answer ``answer``; critiques say ``critique``."""

    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        if "Critique the proposed answer" in text or "not in the required format" in text:
            return critique
        return answer

    return ScriptedModel(respond, logprobs=logprobs)


def cfg(tmp_path: Path | None = None, **kw: object) -> ReasoningConfig:
    base: dict[str, object] = {"limit": 3, "methods": ALL, "params": PARAMS}
    return ReasoningConfig(**{**base, **kw, "out": str(tmp_path) if tmp_path else None})  # type: ignore[arg-type]


def test_arithmetic_items_and_scoring() -> None:
    items = arithmetic_items(3, kind="add20", seed=0)
    assert items == arithmetic_items(3, kind="add20", seed=0)  # seeded
    it = items[0]
    a, b = (int(x) for x in it.task.removeprefix("Q: What is ").split("?")[0].split(" plus "))
    assert it.answer == str(a + b) and it.task.endswith("Reply with the number only.")
    assert it.check(f"{a} + {b} = {a + b}") == (True, str(a + b))  # the last number
    assert it.check(f"The answer is {a + b + 1}.")[0] is False
    assert it.check("I cannot tell.") == (False, None)
    shot = arithmetic_items(1, shots=2)[0].task.split("\n")
    assert len(shot) == 5 and shot[0].startswith("Q: What is ") and shot[1].startswith("A: ")


def test_math500_items_shortest_and_scoring(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    f.write_text(json.dumps([{"prompt": "A long problem statement here.", "answer": "3"},
                             {"problem": "Evaluate $2^3$.", "answer": "8", "id": "p8"}]))  # fmt: skip
    items = math500_items(f, 1)
    assert [i.id for i in items] == ["p8"] and "\\boxed{answer}" in items[0].task
    assert items[0].check("so it is \\boxed{8}") == (True, "8")
    assert items[0].check("\\boxed{9}")[0] is False
    assert [i.id for i in math500_items(f, 1, subset="first")] == ["0"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"prompt": "x", "answer": "1"}, {"prompt": "y", "answer": "2"}, {"prompt": "z"}], "record 2: missing field"),
        ([{"question": "x", "answer": "1"}], "record 0: missing field 'prompt' (or 'problem')"),
        ([{"prompt": "x", "answer": "1"}, "just text"], "record 1: must be a JSON object"),
        ([{"prompt": "", "answer": "1"}], "record 0: field 'prompt' must be a non-empty string"),
        ({"prompt": "x"}, "must hold a non-empty JSON list"),
    ],
)
def test_bad_data_names_the_field_and_record(tmp_path: Path, records: object, message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(records))
    with pytest.raises(ConfigError, match="data") as e:
        math500_items(f, 5)
    assert message in str(e.value)


def test_bad_data_fails_on_the_cli_before_any_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([{"prompt": "x", "answer": "1"}, {"prompt": "y"}]))
    # the provider name is bogus: reaching build_model would fail differently
    rc = main(["bench", "reasoning", "--task", "math500", "--data", str(f), "--provider", "nope"])
    assert rc == 2 and "record 1: missing field 'answer'" in capsys.readouterr().err
    assert main(["bench", "reasoning", "--methods", "cot,self_consistency"]) == 2
    assert "matched to sica-power" in capsys.readouterr().err
    assert main(["bench", "reasoning", "--temperature", "-1"]) == 2
    assert "--temperature" in capsys.readouterr().err
    assert check_record(4, {"prompt": "p", "answer": 7}) == ("4", "p", "7")


def test_parse_methods() -> None:
    assert parse_methods("cot, sica ,cot,sc,sica_power") == ["cot", "sica", "self_consistency", "sica-power"]
    with pytest.raises(ConfigError, match="unknown method 'tot'"):
        parse_methods("cot,tot")
    with pytest.raises(ConfigError, match="give at least one"):
        parse_methods(" , ")
    with pytest.raises(ConfigError, match="limit"):
        ReasoningConfig(limit=0)


def test_defaults_match_the_graph() -> None:
    from genesis_ps.graph.env import DEFAULT_SICA

    assert ReasoningConfig().sica == DEFAULT_SICA


async def test_exact_call_counts_when_every_critique_says_revise() -> None:
    """cot 1; sica (3 answers): draft, (critique, refine) x2, critique = 6; sica-power (2 answers): power draft,
    critique, refine, critique = 4; sica-power-only 1; the baselines' N samples each one call."""
    items = arithmetic_items(3)
    model = scripted("The answer is 1.")
    rep = await run_reasoning(cfg(), model, items)
    ms = rep["methods"]
    assert {m: a["model_calls_per_item"] for m, a in ms.items()} == {
        "cot": 1.0, "sica": 6.0, "sica-power": 4.0, "sica-power-only": 1.0, "bon[sica-power]": 7.0,
        "self_consistency[sica-power]": 7.0,
    }  # fmt: skip
    rows = [r for r in rep["rows"] if r["method"] == "sica"]
    assert [s["kind"] for s in rows[0]["steps"]] == ["draft", "critique", "refine", "critique", "refine", "critique"]
    assert all(r["stop_reason"] == "cap" for r in rows)
    # A scripted reply of k words is k tokens: a plain call costs 4, a power pass (imh, 1 + 2 proposals) 12.
    assert ms["cot"]["tokens_generated_per_item"] == 4.0 and ms["sica-power-only"]["tokens_generated_per_item"] == 12.0
    # The critique ("SCORE: 2 VERDICT: REVISE ISSUES: - wrong") is 7 words.
    assert ms["sica"]["tokens_generated_per_item"] == 3 * 4 + 3 * 7
    assert ms["sica-power"]["tokens_generated_per_item"] == 12 + 4 + 2 * 7
    bon = [r for r in rep["rows"] if r["method"] == "bon[sica-power]"]
    # matched to 30 tokens: 7 samples (28) and 8 (32) are as close; ties go to the smaller N
    assert all(r["n"] == 7 and r["tokens_generated"] == 28 and r["target_tokens"] == 30 for r in bon)
    # per problem: cot 1, sica 6, sica-power 3 (the pass: 1 + 2 proposals) + 3, the pool 8 (drawn up to 30 tokens)
    assert len(model.calls) == 3 * (1 + 6 + 6 + 8)
    sp = next(c for c in rep["comparisons"] if c["a"] == "sica" and c["b"] == "sica-power")
    assert sp["model_calls_reduction"]["point"] == pytest.approx(1 / 3)
    assert sp["model_calls_reduction"]["ci"] == pytest.approx([1 / 3, 1 / 3])
    claims = {c["b"]: c for c in rep["claim"]}
    assert claims["sica-power"]["status"] == "refuted" and "below the claimed 40%" in claims["sica-power"]["text"]
    # both at zero accuracy (the scripted answer is wrong): nothing is established about reasoning
    assert claims["sica-power-only"]["status"] == "not established" and "floor" in claims["sica-power-only"]["text"]
    assert all(a["accuracy"] == 0.0 and a["accuracy_ci"][0] == 0.0 for a in ms.values())


async def test_a_passing_critique_stops_the_loop_early() -> None:
    items = arithmetic_items(2)
    answers = {it.task: f"{it.answer}" for it in items}

    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        if "Critique the proposed answer" in text:
            return "SCORE: 9\nVERDICT: PASS"
        return next(a for t, a in answers.items() if t in text)

    rep = await run_reasoning(cfg(methods=["cot", "sica", "sica-power"]), ScriptedModel(respond), items)
    ms = rep["methods"]
    assert ms["sica"]["model_calls_per_item"] == 2.0 == ms["sica-power"]["model_calls_per_item"]
    assert all(a["accuracy"] == 1.0 for a in ms.values())
    c = next(c for c in rep["comparisons"] if c["b"] == "sica-power" and c["a"] == "cot")
    assert c["model_calls_reduction"]["point"] == pytest.approx(-1.0)  # twice cot's calls
    assert c["accuracy_reading"].startswith("the same on every problem (95% CI [-")


async def test_power_methods_skipped_without_logprobs(tmp_path: Path) -> None:
    model = scripted("The answer is 1.", logprobs="none")
    rep = await run_reasoning(cfg(tmp_path), model, arithmetic_items(2))
    assert set(rep["methods"]) == {"cot", "sica"}
    skipped = rep["skipped_methods"]
    assert set(skipped) == {"sica-power", "sica-power-only", "bon", "self_consistency"}
    assert "returns no log-probabilities" in skipped["sica-power"]
    assert "Skipped methods" in (tmp_path / "report.md").read_text()
    assert not rep["errors"] and not rep["claim"]


async def test_regeneration_is_identical(tmp_path: Path) -> None:
    await run_reasoning(cfg(tmp_path), scripted("The answer is 1."), arithmetic_items(3))
    before = {n: (tmp_path / n).read_text() for n in ("report.json", "report.md")}
    for n in before:
        (tmp_path / n).unlink()
    assert main(["bench", "reasoning", "report", str(tmp_path), "--json"]) == 0
    assert {n: (tmp_path / n).read_text() for n in before} == before
    assert (tmp_path / "accuracy_vs_calls.png").stat().st_size > 0
    (tmp_path / "rows.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(ConfigError, match="header"):
        regenerate(tmp_path)


def test_reduction_and_claim_by_hand() -> None:
    assert reduction([2, 2, 2], [1, 1, 1]) == (0.5, 0.5, 0.5)
    r, lo, hi = reduction([4, 2], [1, 2])
    assert r == 0.5 and lo == pytest.approx(0.0) and hi == pytest.approx(0.75)  # resamples: {4,4}, {2,2}, {4,2}
    assert all(math.isnan(x) for x in reduction([0, 0], [1, 1]))

    def comp(calls: tuple[float, float, float], acc: tuple[float, float, float, float]) -> dict[str, object]:
        flat = {"point": 0.0, "ci": [0.0, 0.0]}
        return {"a": "sica", "b": "sica-power", "n": 30, "model_calls_reduction": {"point": calls[0],
                "ci": [calls[1], calls[2]]}, "tokens_generated_reduction": flat, "requests_reduction": flat,
                "accuracy": {"mean_a": acc[0], "mean_b": acc[0] + acc[1], "mean_diff": acc[1],
                             "newcombe_ci": [acc[2], acc[3]]}}  # fmt: skip

    assert claim_verdict(comp((0.5, 0.45, 0.55), (0.5, 0.05, 0.0, 0.1)))["status"] == "supported"
    v = claim_verdict(comp((0.5, 0.45, 0.55), (0.5, 0.0, -0.1, 0.1)))
    assert v["status"] == "calls only" and "a loss of up to 0.10 is not excluded" in v["text"]
    assert claim_verdict(comp((0.5, 0.3, 0.7), (0.5, 0.0, 0.0, 0.1)))["status"] == "not established"
    assert claim_verdict(comp((0.5, 0.45, 0.55), (0.5, -0.2, -0.3, -0.1)))["status"] == "refuted"
    assert "above the claimed" in claim_verdict(comp((0.8, 0.7, 0.9), (0.5, 0.0, 0.0, 0.1)))["text"]


def test_newcombe_paired_interval_by_hand() -> None:
    """b right on a's 4 problems and 2 more of 12, never worse. By hand (Wilson 6/12 = [0.254, 0.746],
    4/12 = [0.138, 0.609], φ = 24/√1152 = 0.707): [0.167 − √0.0407, 0.167 + √0.0308] = [−0.035, 0.342] —
    a small loss is not excluded, where a percentile bootstrap stops at exactly 0."""
    a = [True] * 4 + [False] * 8
    b = [True] * 6 + [False] * 6
    lo, hi = paired_difference_ci(a, b)
    assert lo == pytest.approx(-0.035, abs=0.003) and hi == pytest.approx(0.342, abs=0.003)
    lo, hi = paired_difference_ci(b, a)  # the other way round: the mirror image
    assert (lo, hi) == pytest.approx((-0.342, 0.035), abs=0.003)
    lo, hi = paired_difference_ci([True] * 30, [False] * 30)
    assert hi < -0.8 and lo >= -1.0  # always worse: the interval excludes 0 by far
    assert all(math.isnan(x) for x in paired_difference_ci([], []))


@pytest.mark.slow
async def test_smoke_on_embedded_model(tmp_path: Path) -> None:
    """cot, sica and the power pass on the real embedded model, one problem, tiny budgets (seconds)."""
    pytest.importorskip("transformers")
    from genesis_ps.loops.sica_state import SicaConfig
    from genesis_ps.providers.local.embedded import load_embedded

    c = cfg(tmp_path, limit=1, methods=["cot", "sica", "sica-power-only"],
            sica=SicaConfig(max_iterations=1, critique_retries=0),
            params=SamplerParams(method="mh", n_mcmc=1, block_size=4, max_new_tokens=8))  # fmt: skip
    rep = await run_reasoning(c, load_embedded())
    ms = rep["methods"]
    assert set(ms) == {"cot", "sica", "sica-power-only"} and not rep["errors"]
    assert ms["cot"]["model_calls_per_item"] == 1.0 == ms["sica-power-only"]["model_calls_per_item"]
    assert ms["sica"]["model_calls_per_item"] == 2.0  # draft, critique; the cap is one answer, no re-ask
    assert ms["sica-power-only"]["requests_per_item"] > 1  # a power pass is several provider requests
    assert ms["sica-power-only"]["fallbacks"] == 0
    assert (tmp_path / "accuracy_vs_tokens.png").stat().st_size > 0
