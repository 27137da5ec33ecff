"""Compute-matched baselines: N matched to measured tokens, best-of-N, majority vote, the report's verdicts."""

from __future__ import annotations

from pathlib import Path

from genesis_ps.bench.baselines import Pool, best_of_n, matched_n, self_consistency
from genesis_ps.bench.methods import parse_methods
from genesis_ps.bench.quality import QualityConfig, run_quality
from genesis_ps.bench.quality_report import pareto_frontier, verdict
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.testing import ScriptedModel


def _r(text: str, logp: float, n: int) -> GenerationResult:
    return GenerationResult(text=text, method="single", provider="t", model="t", alpha=None, tokens_generated=n,
                            tokens_returned=n, latency_s=0.0, seed=0, logp_sum=logp)  # fmt: skip


def test_matched_n_best_of_n_and_majority() -> None:
    assert matched_n([5, 5, 5, 5], 12) == 2  # 10 is closer to 12 than 15
    assert matched_n([5, 5, 5, 5], 13) == 3
    assert matched_n([50], 3) == 1  # at least one sample
    samples = [_r("7", -6.0, 3), _r("8", -1.0, 2), _r("7", -3.0, 2), _r("x", -0.1, 1)]
    assert best_of_n(samples) == 3  # mean log-lik −0.1 per token
    pick, votes = self_consistency(samples, lambda t: t if t.isdigit() else None)
    assert (pick, votes) == (2, 2)  # answer 7 twice; its likelier sample
    assert self_consistency(samples[3:], lambda t: None) == (0, 0)  # no answers: best-of-N


async def test_pool_is_shared_and_drawn_only_as_needed() -> None:
    drawn: list[int] = []

    async def draw(j: int) -> GenerationResult:
        drawn.append(j)
        return _r(str(j % 2), -float(j), 4)

    pool = Pool(draw)
    a = await pool.pick("bon", 9.0)
    assert a.n == 2 and a.tokens_generated == 8 and drawn == [0, 1, 2]  # drawn until tokens >= 9
    b = await pool.pick("self_consistency", 5.0, extract=lambda t: t)
    assert b.n == 1 and drawn == [0, 1, 2] and b.votes == 1


def test_verdicts_say_only_what_the_interval_shows() -> None:
    assert "beats" in verdict({"a": "bon[p]", "b": "p", "ci_low": 0.01, "ci_high": 0.2})
    assert verdict({"a": "bon[p]", "b": "p", "ci_low": -0.1, "ci_high": 0.2}).startswith("not distinguishable")
    assert verdict({"a": "bon[p]", "b": "p", "ci_low": -0.3, "ci_high": -0.1}).startswith("bon[p] beats")
    assert pareto_frontier({"a": (1.0, 0.4), "b": (3.0, 0.5), "c": (2.0, 0.3), "d": (4.0, 0.45)}) == ["a", "b"]


def _answer(prompt: Prompt) -> str:
    q = (prompt.raw or "").rsplit("\n", 1)[-1].rstrip(" =")
    x, y = (int(t) for t in q.split(" + "))
    return f" {x + y} and more words here"


async def test_quality_run_with_matched_baselines(tmp_path: Path) -> None:
    cfg = QualityConfig(n=4, methods=parse_methods("single,power-mh,bon,self_consistency"), seeds=2,
                        params=SamplerParams(max_new_tokens=6, n_mcmc=3), out=str(tmp_path))  # fmt: skip
    rep = await run_quality(cfg, ScriptedModel(_answer))
    ms = rep["methods"]
    assert set(ms) == {"single", "power-mh", "bon[power-mh]", "self_consistency[power-mh]"}
    # the scripted model's power-mh runs imh with 4 proposals of 5 words: 20 tokens; baselines match it
    assert ms["power-mh"]["tokens_generated_mean"] == 20 == ms["bon[power-mh]"]["tokens_generated_mean"]
    assert ms["bon[power-mh]"]["accuracy"] == 1.0 == ms["self_consistency[power-mh]"]["accuracy"]
    matched = {c["a"]: c for c in rep["matched_comparisons"]}
    assert set(matched) == {"bon[power-mh]", "self_consistency[power-mh]"}
    assert all(c["b"] == "power-mh" and c["n"] == 4 and c["mean_diff"] == 0.0 for c in matched.values())
    assert (tmp_path / "accuracy_vs_tokens.png").is_file()
    assert "compute-matched" in (tmp_path / "report.md").read_text()
