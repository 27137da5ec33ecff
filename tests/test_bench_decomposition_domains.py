"""``bench decomposition`` across domains: selection and validation, per-domain aggregation with exact
numbers on the scripted model, the plan-quality tilt as its own method, regeneration from rows.jsonl,
and loading every shared WorFBench domain file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from genesis_ps.bench.decomposition import DecompositionConfig, check_tilt_lambda, run_decomposition
from genesis_ps.bench.decomposition_report import report_from_file, write_reports
from genesis_ps.bench.decomposition_stats import claim_reading, relative_ci
from genesis_ps.bench.methods import parse_methods, run_method
from genesis_ps.bench.worfbench_load import load_records, parse_domains
from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.testing import ScriptedModel

_ROOTS = Path(__file__).resolve().parents
_CANDIDATES = [p / "shared" / "benchmarks" / "worfbench" for p in _ROOTS[2:4]]
DATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])  # the project's ../shared, or a worktree's ../..
SEVEN = ["alfworld", "lumos", "os", "toolalpaca", "toolbench", "webshop", "wikihow"]
GOLD = "Node:\n1: open the terminal\n2: list the files\n3: count the lines\nEdge: (START,1) (1,2) (2,3) (3,END)"
PARTIAL = (  # two of the three gold steps: precision 1, recall 2/3, f1 0.8
    '{"tasks": [{"id": "1", "description": "open the terminal", "depends_on": []}, '
    '{"id": "2", "description": "list the files", "depends_on": ["1"]}]}'
)
PROSE = "I do not know."


def _rec(i: int, task: str, dom: str) -> dict[str, Any]:
    return {"id": f"{dom}{i}", "source": dom, "conversations": [
        {"role": "system", "content": "Plan it."}, {"role": "user", "content": task},
        {"role": "assistant", "content": GOLD}]}  # fmt: skip


@pytest.fixture
def two_domains(tmp_path: Path) -> Path:
    """Domain ``a``: 5 records (3 answered with the gold workflow, 2 with the partial one); ``b``: 2 partial."""
    d = tmp_path / "wb"
    d.mkdir()
    tasks_a = ["alpha task number one", "beta task two", "alpha task three", "beta four", "alpha task five"]
    (d / "a.json").write_text(json.dumps([_rec(i, t, "a") for i, t in enumerate(tasks_a)]))
    (d / "b.json").write_text(json.dumps([_rec(i, t, "b") for i, t in enumerate(["beta one", "beta two long"])]))
    return d


def _by_task(prompt: Prompt) -> str:
    return GOLD if "alpha" in prompt.messages[-1][1] else PARTIAL


def _cfg(data: Path, methods: str, **kw: Any) -> DecompositionConfig:
    return DecompositionConfig(data=str(data), methods=parse_methods(methods, tilt=True), matcher="lexical",
                               params=SamplerParams(max_new_tokens=64, n_mcmc=2), **kw)  # fmt: skip


def test_domain_selection_and_validation(two_domains: Path) -> None:
    assert parse_domains(None, two_domains) == ["a", "b"]
    assert parse_domains("b, a,b", two_domains) == ["b", "a"]
    for bad, message in [("", "at least one"), (" , ", "at least one"), ("a,zzz", "unknown domain.*zzz.*a, b")]:
        with pytest.raises(ConfigError, match=message) as info:
            parse_domains(bad, two_domains)
        assert info.value.param == "domains"
    short = load_records(two_domains, ["a"], limit=2, pick="shortest")
    assert [r.task for r in short.records] == ["beta task two", "beta four"]  # the 13 and 9 characters, file order
    assert [r.id for r in load_records(two_domains, ["a"], limit=2).records] == ["a0", "a1"]
    assert short.available == {"a": 5}
    with pytest.raises(ConfigError, match="pick"):
        load_records(two_domains, pick="longest")


def test_cli_flags_fail_at_the_edge(two_domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genesis_ps.cli import main

    base = ["bench", "decomposition", "--data", str(two_domains), "--provider", "no-such-provider"]
    for extra, field in [(["--domains", "a,zz"], "domains"), (["--limit-per-domain", "0"], "limit"),
                         (["--tilt-lambda", "0", "--methods", "power-mh-tilt"], "--tilt-lambda"),
                         (["--tilt-lambda", "nan"], "--tilt-lambda")]:  # fmt: skip
        assert main(base + extra) == 2
        assert field in capsys.readouterr().err
    (two_domains / "b.json").write_text(json.dumps([_rec(0, "x", "b"), {"id": "q", "conversation": []}]))
    assert main(base) == 2
    assert "b.json: record 1 (id 'q'): missing field 'conversations'" in capsys.readouterr().err


async def test_per_domain_and_overall_aggregates_are_exact(two_domains: Path) -> None:
    rep = await run_decomposition(_cfg(two_domains, "single,power-mh,bon,self_consistency"), ScriptedModel(_by_task))
    gold_t, part_t = len(GOLD.split()), len(PARTIAL.split())  # the scripted model's tokens are words
    a, b = rep["per_domain"]["a"]["single"], rep["per_domain"]["b"]["single"]
    assert a["n"] == 5 and a["f1_chain"]["mean"] == pytest.approx((3 * 1.0 + 2 * 0.8) / 5)
    assert b["n"] == 2 and b["f1_graph"]["mean"] == pytest.approx(0.8)
    assert b["f1_chain"]["ci_low"] == pytest.approx(0.8) and b["f1_chain"]["ci_high"] == pytest.approx(0.8)
    assert a["tokens_generated_mean"] == pytest.approx((3 * gold_t + 2 * part_t) / 5)
    overall = rep["methods"]["single"]
    assert overall["n"] == 7 and overall["f1_chain"]["mean"] == pytest.approx((3 + 4 * 0.8) / 7)
    assert overall["wall_s_total"] == pytest.approx(a["wall_s_total"] + b["wall_s_total"])
    # power-mh on the scripted model is independence MH over n_mcmc + 1 = 3 proposals; the baselines match it
    assert rep["per_domain"]["b"]["power-mh"]["tokens_generated_mean"] == 3 * part_t
    assert rep["per_domain"]["b"]["bon[power-mh]"]["tokens_generated_mean"] == 3 * part_t
    m = {(c["a"], c["metric"]): c for c in rep["matched_comparisons"]}
    c = m[("bon[power-mh]", "f1_chain")]
    assert c["n"] == 7 and c["mean_diff"] == 0.0 and c["verdict"] == "identical on every record"
    assert c["relative_diff"] == 0.0 and c["claim"] == "interval below +15%: claim not supported"
    per = {(c["scope"], c["a"], c["metric"]): c for c in rep["domain_comparisons"]}
    assert per[("a", "bon[power-mh]", "f1_chain")]["n"] == 5 and "ci_low" in per[("a", "bon[power-mh]", "f1_chain")]
    assert per[("b", "bon[power-mh]", "f1_chain")]["verdict"] == "not tested (n < 5)"


async def test_tilt_is_a_method_of_its_own_and_moves_the_chain(two_domains: Path) -> None:
    """Proposals cycle prose, gold, prose. Untilted (log-probs all 0) every proposal is accepted and the
    last, prose, is returned; with λ = 50 the gold plan (quality ~1) is accepted and prose is refused."""
    calls: list[Prompt] = []

    def script(prompt: Prompt) -> str:
        calls.append(prompt)
        return [PROSE, GOLD, PROSE][(len(calls) - 1) % 3]

    rep = await run_decomposition(_cfg(two_domains, "power-mh,power-mh-tilt", domains=["b"], tilt_lambda=50.0),
                                  ScriptedModel(script))  # fmt: skip
    assert rep["methods"]["power-mh"]["f1_chain"]["mean"] == 0.0
    assert rep["methods"]["power-mh-tilt"]["f1_chain"]["mean"] == 1.0
    t = {c["metric"]: c for c in rep["tilt_comparisons"]}
    assert t["f1_chain"]["a"] == "power-mh" and t["f1_chain"]["b"] == "power-mh-tilt" and t["f1_chain"]["n"] == 2
    assert t["f1_chain"]["verdict"] == "power-mh-tilt beats power-mh (95% CI above 0)"
    assert rep["config"]["tilt_lambda"] == 50.0


async def test_tilt_lambda_is_validated(two_domains: Path) -> None:
    assert check_tilt_lambda(0.5) == 0.5
    for bad in (0, -1.0, math.nan, math.inf, True, "2"):
        with pytest.raises(ConfigError, match="tilt_lambda"):
            check_tilt_lambda(bad)
    model = ScriptedModel([GOLD])
    with pytest.raises(ConfigError, match="tilt_lambda"):
        await run_decomposition(_cfg(two_domains, "power-mh-tilt", tilt_lambda=0.0), model)
    assert model.calls == []
    with pytest.raises(ConfigError, match="only bench decomposition"):
        parse_methods("single,power-mh-tilt")  # the quality bench has no plan to tilt by
    with pytest.raises(ConfigError, match="lam"):
        await run_method(model, Prompt.user("x"), parse_methods("power-mh-tilt", tilt=True)[0], SamplerParams())


async def test_report_regenerates_identically_from_rows(two_domains: Path, tmp_path: Path) -> None:
    out, again = tmp_path / "run", tmp_path / "again"
    cfg = _cfg(two_domains, "single,power-mh,power-mh-tilt,bon", out=str(out))
    await run_decomposition(cfg, ScriptedModel(_by_task))
    write_reports(report_from_file(out / "rows.jsonl"), again)
    for name in ("report.json", "report.md", "f1_vs_tokens.png", "per_domain.png", "quality_vs_cost.png"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    md = (out / "report.md").read_text()
    assert "### a" in md and "### b" in md and "Plan-quality tilt" in md and "compute-matched" in md
    with pytest.raises(ConfigError, match="header"):
        (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
        report_from_file(tmp_path / "bad.jsonl")


def test_relative_interval_and_claim_reading() -> None:
    r = relative_ci([0.5, 0.5, 0.5, 0.5], [0.6, 0.6, 0.6, 0.6])
    assert r["relative_diff"] == pytest.approx(0.2) and r["rel_ci_low"] == pytest.approx(0.2)
    assert claim_reading(r["rel_ci_low"], r["rel_ci_high"]) == "interval inside the claimed range"
    assert relative_ci([0.0, 0.0], [0.5, 0.5])["relative_diff"] is None
    assert claim_reading(-0.1, 0.4).startswith("interval overlaps")
    assert claim_reading(0.3, 0.5) == "interval above +25%"


@pytest.mark.skipif(not DATA.is_dir(), reason="shared WorFBench data not present")
def test_every_shared_domain_file_loads() -> None:
    assert parse_domains(None, DATA) == SEVEN
    full = load_records(DATA)
    assert set(full.available) == set(SEVEN) and sum(full.available.values()) == 1423
    assert {r.domain for r in full.records} == set(SEVEN)
    assert len(full.records) + len(full.skipped) == 1423
    subset = load_records(DATA, limit=6, pick="shortest")
    for dom in SEVEN:
        recs = [r for r in subset.records if r.domain == dom]
        assert len(recs) == 6 and all(r.gold.nodes and r.gold.is_acyclic() and r.task for r in recs), dom
