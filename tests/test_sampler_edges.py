"""Sampler edges: alpha and temperatures bounded to what fp32 logits carry (and computed stably anyway),
an empty encoded prompt refused, a reward without lam > 0 refused, a budget too small for one token an
error (or a recorded fallback), and a truncated proposal's target stated in the result."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from genesis_ps import Budget, Prompt, SamplerParams, generate, power_sample, single_shot  # noqa: E402
from genesis_ps.cli import main  # noqa: E402
from genesis_ps.errors import BudgetExceededError, ConfigError, ProviderError  # noqa: E402
from genesis_ps.providers.local import LocalModel  # noqa: E402
from genesis_ps.providers.local.engine import dists, sample  # noqa: E402
from genesis_ps.testing import eos_toy  # noqa: E402

WORDS = ["<unk>", "<eos>", "the", "cat", "sat", "on", "mat", "a", "dog"]
FAST = {"n_mcmc": 2, "block_size": 4, "max_new_tokens": 8, "seed": 0}


@pytest.fixture(scope="module")
def tiny() -> Any:
    """A randomly initialised two-layer Llama over a nine-word vocabulary (built in memory, in seconds)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                   eos_token_id=1, pad_token_id=0)  # fmt: skip
    return transformers.LlamaForCausalLM(cfg).eval(), hf_tok


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"alpha": 1e38}, "alpha"), ({"alpha": 1e5}, "alpha"), ({"temperature": 1e-38}, "temperature"),
     ({"proposal_temperature": 1e-38}, "proposal_temperature"), ({"temperature": 1e38}, "temperature")],
)  # fmt: skip
def test_alpha_and_temperatures_are_bounded(kw: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SamplerParams(**kw)  # type: ignore[arg-type]


def test_the_bounds_themselves_are_allowed() -> None:
    p = SamplerParams(alpha=1e4, temperature=1e-4, proposal_temperature=1e-4)
    assert p.tau == 1e-4 and SamplerParams(alpha=1e4).tau == 1 / 3  # the default rule: max(1/alpha, 1/3)
    assert SamplerParams(temperature=0).temperature == 0.0


def test_the_proposal_is_computed_stably_at_any_temperature() -> None:
    logits = torch.randn(3, 50) * 30
    for tau in (1e-38, 1e-30, 1e-4):
        _, lq = dists(logits, tau, None, None)
        assert not torch.isnan(lq).any() and (lq <= 0).all()
        tok = sample(lq, torch.Generator().manual_seed(0))
        assert torch.equal(tok.view(-1), logits.argmax(dim=-1))  # the limit of a vanishing temperature
    with pytest.raises(ProviderError, match="NaN"):
        sample(torch.full((1, 5), float("nan")), torch.Generator().manual_seed(0))


async def test_the_largest_alpha_returns_tokens_inside_the_vocabulary(tiny: Any) -> None:
    model = LocalModel(*tiny)
    r = await power_sample(model, Prompt.text("the cat"), SamplerParams(method="mh", alpha=1e4, **FAST))
    assert r.tokens and all(0 <= t < len(WORDS) for t in r.tokens)
    s = await single_shot(model, Prompt.text("the cat"), max_new_tokens=6, temperature=1e-4, seed=1)
    assert s.text is not None


async def test_an_empty_encoded_prompt_is_refused_before_any_model_work(tiny: Any) -> None:
    model = LocalModel(*tiny)
    for call in (power_sample(model, Prompt.text(""), SamplerParams(method="mh", **FAST)),
                 single_shot(model, Prompt.text(""), max_new_tokens=4),
                 model.extend(Prompt.text(""), [()], 4, 1.0)):  # fmt: skip
        with pytest.raises(ConfigError, match="prompt: encodes to zero tokens"):
            await call


async def test_a_reward_without_lam_is_refused_naming_lam() -> None:
    with pytest.raises(ConfigError, match="lam"):
        await power_sample(eos_toy(), "q", seed=1, reward=lambda t: float(len(t)))
    with pytest.raises(ConfigError, match="lam"):
        await power_sample(eos_toy(), "q", seed=1, reward=lambda t: 1.0, lam=0.0)
    tilted = await power_sample(eos_toy(), "q", seed=1, reward=lambda t: float(len(t)), lam=0.5)
    assert tilted.text is not None


async def test_a_budget_too_small_for_one_token_is_an_error_or_a_recorded_fallback() -> None:
    params = SamplerParams(method="mh", block_size=4, max_new_tokens=8, n_mcmc=2, seed=3)
    with pytest.raises(BudgetExceededError, match="before a single token"):
        await power_sample(eos_toy(), "q", params, budget=Budget(max_tokens=1))
    fallback = await generate(eos_toy(), "q", params, budget=Budget(max_tokens=1))
    assert fallback.fallback == "budget" and fallback.text and "budget" in fallback.extra["fallback_error"]


async def test_truncation_changing_the_target_is_stated_in_the_result(tiny: Any) -> None:
    plain = await power_sample(LocalModel(*tiny), Prompt.text("the cat"), SamplerParams(method="mh", **FAST))
    assert "truncated_target" not in plain.extra
    for kw, needle in (({"top_k": 3}, "top_k=3"), ({"top_p": 0.5}, "top_p=0.5")):
        r = await power_sample(LocalModel(*tiny, **kw), Prompt.text("the cat"), SamplerParams(method="mh", **FAST))
        assert needle in r.extra["truncated_target"] and "restricted to the truncated support" in r.extra[
            "truncated_target"]


@pytest.mark.parametrize(("flag", "value"), [("--alpha", "1e38"), ("--temperature", "1e-38")])
def test_the_cli_names_the_flag(flag: str, value: str, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genesis_ps.providers.registry.build_model", lambda *a, **k: pytest.fail("model loaded"))
    assert main(["sample", "hi", flag, value]) == 2
    assert flag in capsys.readouterr().err
