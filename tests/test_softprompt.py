"""Soft-prompt optimisation on a tiny Llama built in memory: the loss against a manual cross-entropy, the
baselines' order, a pair that converges and regenerates, the dry run end to end (and resumed), and bad
input refused at the edge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from genesis_ps.cli import main  # noqa: E402
from genesis_ps.errors import ConfigError  # noqa: E402
from genesis_ps.softprompt import SoftPromptConfig, arith_pairs, prepare_pairs, tiny_frozen  # noqa: E402
from genesis_ps.softprompt.data import find_math500, math500_pairs, read_jsonl_pairs  # noqa: E402
from genesis_ps.softprompt.decode import token_f1, verdict  # noqa: E402
from genesis_ps.softprompt.health import classify_curve, target_converged  # noqa: E402
from genesis_ps.softprompt.lm import FrozenLM  # noqa: E402
from genesis_ps.softprompt.loss import target_scores  # noqa: E402
from genesis_ps.softprompt.pipeline import run_pipeline  # noqa: E402
from genesis_ps.softprompt.run import Runner  # noqa: E402

DRY = ["softprompt", "run", "--dry-run", "--pairs", "arith", "--n", "3", "--k", "8", "--restarts", "2",
       "--steps", "40", "--sample", "2", "--k-sweep", "4,8", "--sweep-pairs", "2"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> object:
    """The tiny model runs faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lm() -> FrozenLM:
    return tiny_frozen(seed=0)


def manual_ce(model: object, prompt: torch.Tensor, target: list[int]) -> float:
    """Mean CE of ``target`` after ``prompt``: one unpadded forward, logits at p-1 .. p+t-2."""
    emb = model.get_input_embeddings()  # type: ignore[attr-defined]
    x = torch.cat([prompt, emb(torch.tensor(target))]).unsqueeze(0)
    logits = model(inputs_embeds=x, use_cache=False).logits[0]  # type: ignore[operator]
    p = prompt.shape[0]
    return float(torch.nn.functional.cross_entropy(logits[p - 1 : p - 1 + len(target)], torch.tensor(target)))


def test_loss_scores_exactly_the_target_positions(lm: FrozenLM) -> None:
    g = torch.Generator().manual_seed(1)
    d = lm.embeddings.shape[1]
    prompts = [torch.randn(n, d, generator=g) * 0.1 for n in (3, 9, 5)]
    targets = [[5, 6, 7, 8], [9], [10, 11, 12, 13, 14, 15, 16]]
    sc = target_scores(lm.model, prompts, targets)
    for i in range(3):
        assert float(sc.full[i]) == pytest.approx(manual_ce(lm.model, prompts[i], targets[i]), abs=1e-5)
    # a truncated (progressive) loss is the CE of the first u tokens only; full and leading still cover all
    part = target_scores(lm.model, prompts, targets, upto=[2, 1, 3])
    for i, u in enumerate((2, 1, 3)):
        assert float(part.loss[i]) == pytest.approx(manual_ce(lm.model, prompts[i], targets[i][:u]), abs=1e-5)
    assert torch.allclose(part.full, sc.full)


def test_gradients_reach_the_prompt_and_never_the_weights(lm: FrozenLM) -> None:
    c = (lm.embeddings[:4].clone() * 1.0).requires_grad_(True)
    sc = target_scores(lm.model, [c], [[5, 6]])
    sc.loss.sum().backward()
    assert c.grad is not None and float(c.grad.abs().sum()) > 0
    assert all(not p.requires_grad and p.grad is None for p in lm.model.parameters())


def test_baselines_are_ordered_full_context_below_random(lm: FrozenLM) -> None:
    prep = prepare_pairs(lm, arith_pairs(4, seed=3), n=4, max_k=8)
    runner = Runner(lm, prep, SoftPromptConfig(k=8, restarts=1, steps=1))
    runner.baselines()
    for rec in runner.records:
        b = rec["baselines"]
        assert b["full_context_a"] < b["random_a"]
        assert b["full_context_a"] < b["single_token_a"]


def test_a_pair_converges_and_regenerates(lm: FrozenLM) -> None:
    pairs = arith_pairs(2, seed=0)
    prep = prepare_pairs(lm, pairs, n=2, max_k=8)
    cfg = SoftPromptConfig(k=8, restarts=2, steps=300, lr=0.1, batch=8, stop_loss=0.2)
    runner = Runner(lm, prep, cfg)
    runner.baselines()
    per = runner.stage2()
    dec = runner.stage3(per)
    passed = [i for i in dec if dec[i]["verdict"] == "pass"]
    assert passed, dec
    for i in passed:
        assert per[i]["converged"] and per[i]["teacher_forced_exact"]
        assert dec[i]["q_text"] == pairs[i].question and dec[i]["a_text"] == pairs[i].answer
        assert dec[i]["q_f1"] == 1.0 and dec[i]["a_f1"] == 1.0


def test_dry_run_end_to_end_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main([*DRY, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["summary"]) == {"stage1", "stage2", "stage4"}
    for name in ("results.json", "report.md", "loss_curves.png", "convergence_vs_k.png", "vectors.pt"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    rec = res["pairs"][0]
    assert {"baselines", "stage1", "stage2", "stage3"} <= set(rec)
    assert len(rec["stage2"]["restarts"]) == 2
    assert rec["stage2"]["health"] in ("healthy", "oscillating", "flat", "diverging")
    assert [r["k"] for r in res["summary"]["stage4"]["k_sweep"]] == [4, 8]
    assert set(res["summary"]["stage4"]["progressive"]) == {"on", "off"}
    assert "## Stage 2 (joint) and stage 3 (greedy decoding)" in (out / "report.md").read_text()
    saved = torch.load(out / "vectors.pt", weights_only=True)
    key = "stage2|k=8|arith-0|r=0"
    assert saved["jobs"][key]["vectors"].shape == (8, 64)
    # resuming re-optimises nothing and reproduces the stage-2 numbers
    assert main([*DRY, "--out", str(out), "--resume", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["meta"]["resumed_restarts"] == len(saved["jobs"])
    assert again["timing"] == summary["timing"]  # restored from vectors.pt; nothing new was timed
    assert again["summary"]["stage2"] == summary["summary"]["stage2"]


def test_the_stage1_gate_stops_a_run_that_cannot_converge(lm: FrozenLM) -> None:
    prep = prepare_pairs(lm, arith_pairs(2), n=2, max_k=1)
    cfg = SoftPromptConfig(k=1, restarts=1, steps=1, gate=1.0, sample=2)
    res = run_pipeline(lm, prep, cfg, stages={"1", "2", "3", "4"})
    assert res["meta"]["stopped_by_gate"] and set(res["summary"]) == {"stage1"}
    assert res["summary"]["stage1"]["convergence"] < 1.0


def test_health_classes_and_scores_on_known_cases() -> None:
    assert classify_curve([5, 4, 3, 2, 1]) == "healthy"
    assert classify_curve([5, 5, 5, 4.99, 1]) == "healthy"  # plateau, then a drop
    assert classify_curve([5, 5.01, 4.98, 5.0]) == "flat"
    assert classify_curve([5, 2, 4.5, 1.5, 4, 1]) == "oscillating"
    assert classify_curve([5, 6, 7]) == "diverging" and classify_curve([5, math.nan]) == "diverging"
    assert target_converged(1.4, 5.0) and not target_converged(1.6, 5.0)
    assert target_converged(1.9, 5.0, full_context=1.0) and not target_converged(2.1, 5.0, full_context=1.0)
    assert token_f1([1, 2, 3], [1, 2, 3]) == 1.0 and token_f1([4], [1, 2]) == 0.0
    assert token_f1([1, 2], [1, 2, 3, 4]) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert verdict(True, True, 1, 1) == "pass" and verdict(True, False, 1, 0.2) == "partial"
    assert verdict(False, False, 0.2, 0.3) == "fail"


def test_data_sources(tmp_path: Path) -> None:
    a, b = arith_pairs(20, seed=5), arith_pairs(20, seed=5)
    assert a == b and len({p.question for p in a}) == 20
    x, y = (int(t) for t in a[0].question.rstrip("=?").split("+"))
    assert a[0].answer == str(x + y)
    f = tmp_path / "p.jsonl"
    lines = ['{"question": "q1", "answer": "a1"}', "",
             '{"question": "q2", "answer": "a2", "answer_paraphrases": ["b2"]}']
    f.write_text("\n".join(lines) + "\n")
    pairs = read_jsonl_pairs(f)
    assert [p.question for p in pairs] == ["q1", "q2"] and pairs[1].answer_paraphrases == ("b2",)
    if find_math500() is None:
        pytest.skip("MATH500.json not present")
    m = math500_pairs()
    assert len(m) == 500 and all(p.question and p.answer for p in m)


def test_shortest_selection_orders_by_tokens(lm: FrozenLM, tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"question": q, "answer": "1"}) for q in ("aaaaaa", "a", "aaa")) + "\n")
    prep = prepare_pairs(lm, read_jsonl_pairs(f), n=2, max_k=4, select="shortest")
    assert [p.question for p in prep.pairs] == ["a", "aaa"]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--k", "0"], "--k"),
        (["--steps", "0"], "--steps"),
        (["--restarts", "0"], "--restarts"),
        (["--lr", "-1"], "--lr"),
        (["--stage", "5"], "--stage"),
        (["--k-sweep", "4,0"], "--k-sweep"),
        (["--schedule", "warm"], "--schedule"),
    ],
)
def test_bad_flags_fail_before_any_model_loads(
    extra: list[str], flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import genesis_ps.softprompt.lm as lm_mod

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(lm_mod, "tiny_frozen", boom)
    monkeypatch.setattr(lm_mod, "open_lm", boom)
    assert main([*DRY, *extra]) == 2
    assert f"error: {flag}:" in capsys.readouterr().err


def test_bad_pairs_files_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import genesis_ps.softprompt.lm as lm_mod

    monkeypatch.setattr(lm_mod, "open_lm", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"question": "q"\n')
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"question": "q", "answer": "a"}\n{"question": "q", "answer": 3}\n')
    for path, text in ((empty, "empty"), (bad, "bad.jsonl:2: not valid JSON"), (missing, "missing.jsonl:2: needs")):
        assert main(["softprompt", "run", "--pairs", str(path)]) == 2
        err = capsys.readouterr().err
        assert "--pairs" in err and text in err, err
    assert main(["softprompt", "run", "--pairs", "nothing-here"]) == 2
    assert "neither a file nor" in capsys.readouterr().err


def test_hosted_provider_is_refused_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["softprompt", "run", "--pairs", "arith", "--provider", "openai"]) == 2
    err = capsys.readouterr().err
    assert "--provider" in err and "gradients" in err and "local model" in err


def test_a_pair_longer_than_the_context_is_refused(lm: FrozenLM, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="context of 160") as e:
        prepare_pairs(lm, arith_pairs(1), n=1, max_k=155)
    assert e.value.param == "--pairs"
    assert main([*DRY, "--k", "155", "--stage", "2"]) == 2
    assert "more than the model's context" in capsys.readouterr().err


def test_learned_modes_and_the_paraphrase_regulariser_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.jsonl"
    rows = [{"question": "12+3=?", "answer": "15", "question_paraphrases": ["3+12=?"], "answer_paraphrases": ["15 "]},
            {"question": "40+2=?", "answer": "42"}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = ["softprompt", "run", "--dry-run", "--pairs", str(f), "--n", "2", "--k", "8", "--restarts", "1",
            "--steps", "30", "--mode", "learned", "--calibration", "2", "--stage", "4", "--k-sweep", "8",
            "--sweep-pairs", "2", "--json"]
    assert main(args) == 0
    s4 = json.loads(capsys.readouterr().out)["summary"]["stage4"]
    assert s4["paraphrases"]["pairs"] == 1
    assert s4["paraphrases"]["with"]["pairs"] == s4["paraphrases"]["without"]["pairs"] == 1


def test_learned_modes_move_and_token_modes_do_not(lm: FrozenLM) -> None:
    prep = prepare_pairs(lm, arith_pairs(2), n=2, max_k=4)
    fixed = Runner(lm, prep, SoftPromptConfig(k=4, restarts=1, steps=5))
    learned = Runner(lm, prep, SoftPromptConfig(k=4, restarts=1, steps=5, mode="learned", calibration=2))
    q, a = (lm.token_vector(t) for t in ("Question", "Answer"))
    assert torch.equal(fixed.modes[0], q) and torch.equal(fixed.modes[1], a)
    assert not torch.equal(learned.modes[0], q) and not torch.equal(learned.modes[1], a)


def test_report_rerenders_from_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main([*DRY, "--stage", "3", "--out", str(out)]) == 0
    before = (out / "report.md").read_text()
    (out / "report.md").unlink()
    (out / "loss_curves.png").unlink()
    capsys.readouterr()
    assert main(["softprompt", "report", str(out)]) == 0
    assert (out / "report.md").read_text() == before and (out / "loss_curves.png").is_file()
    assert main(["softprompt", "report", str(tmp_path / "nowhere")]) == 2
