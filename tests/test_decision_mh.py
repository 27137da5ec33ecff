"""Decision-point MH: entropy cuts in the ratio, multiple tries, adaptive effort, mixing diagnostics, one α."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesis_ps
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling.cuts import cut_log_probs, mtm_log_ratio, suffix_log_weight
from genesis_ps.sampling.mh import mh_chains, mh_log_ratio
from genesis_ps.sampling.protocol import Capabilities
from genesis_ps.testing import exact
from genesis_ps.testing.toys import ToyLM, eos_toy, sharp_toy, trap_toy

P = Prompt.text("")


def test_cut_distributions() -> None:
    assert np.allclose(cut_log_probs(4, None), -math.log(4))
    lp = cut_log_probs(4, [0.5, 1.5, 0.2, 0.9])
    assert math.isclose(float(np.exp(lp).sum()), 1.0)
    eps = 0.05 * (3.1 / 4) + 1e-6
    jumps = np.array([0.5, 1.0, 0.0, 0.7])  # max(H_t - H_{t-1}, 0), H_{-1} = 0
    assert np.allclose(np.exp(lp), (jumps + eps) / (2.2 + 4 * eps))
    assert np.exp(lp[2]) > 0  # a position where entropy falls stays reachable
    with pytest.raises(ValueError):
        cut_log_probs(3, [0.1])


def test_single_try_entropy_ratio_is_the_plain_ratio_with_cut_terms() -> None:
    cur_p, cur_q = [-0.5, -1.0], [-0.3, -0.2]
    prop_p, prop_q = [-0.1, -0.2, -0.3], [-0.05, -0.1, -0.4]
    lr = mtm_log_ratio(
        suffix_log_weight(4.0, cur_p, cur_q), [suffix_log_weight(4.0, prop_p, prop_q)], 0,
        cur_cut_logp=-math.log(3), prop_cut_logp=-math.log(4),
    )
    assert lr == pytest.approx(mh_log_ratio(4.0, cur_p, cur_q, prop_p, prop_q, cur_len=3, prop_len=4))
    ent = mtm_log_ratio(0.2, [0.7], 0, cur_cut_logp=math.log(0.3), prop_cut_logp=math.log(0.1))
    assert ent == pytest.approx(0.5 + math.log(0.1) - math.log(0.3))


_w = st.floats(min_value=-30, max_value=5)


@settings(max_examples=60, deadline=None)
@given(_w, st.lists(_w, min_size=1, max_size=5), st.data(), st.floats(-3, 0), st.floats(-3, 0))
def test_multiple_try_ratio_satisfies_detailed_balance(wx, tries, data, cx, cy) -> None:  # type: ignore[no-untyped-def]
    # x -> y (chosen among tries) against y -> x with the reverse reference set tries - {y} + {x}
    j = data.draw(st.integers(0, len(tries) - 1))
    fwd = mtm_log_ratio(wx, tries, j, cur_cut_logp=cx, prop_cut_logp=cy)
    back_tries = [w for i, w in enumerate(tries) if i != j] + [wx]
    back = mtm_log_ratio(tries[j], back_tries, len(back_tries) - 1, cur_cut_logp=cy, prop_cut_logp=cx)
    assert fwd == pytest.approx(-back, abs=1e-9)


@pytest.mark.parametrize(("toy_fn", "alpha", "t_max", "tries", "steps"), [
    (eos_toy, 2.0, 5, 1, 30), (sharp_toy, 4.0, 3, 1, 30), (eos_toy, 4.0, 5, 3, 30), (trap_toy, 4.0, 4, 1, 30),
])  # fmt: skip
async def test_entropy_cuts_reach_the_noise_floor(toy_fn, alpha, t_max, tries, steps) -> None:  # type: ignore[no-untyped-def]
    toy = toy_fn()
    n = 1500
    params = SamplerParams(alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=steps, cuts="entropy",
                           n_tries=tries)  # fmt: skip
    run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(7))
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) <= 1.5 * floor + 0.01


async def test_without_the_cut_terms_entropy_cuts_are_biased() -> None:
    toy = sharp_toy()
    params = SamplerParams(alpha=2.0, max_new_tokens=3, block_size=2, n_mcmc=30, cuts="entropy")
    run = await mh_chains(toy, P, params, n_chains=1500, target=Target(2.0), rng=np.random.default_rng(7),
                          length_term=False)  # fmt: skip
    want = exact.power_distribution(toy, 3, 2.0)
    floor = exact.noise_floor(want, 1500, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) > 2 * floor + 0.02


async def test_multiple_tries_come_from_one_batched_call_per_step() -> None:
    toy = eos_toy()
    r = await genesis_ps.power_sample(toy, "q", method="mh", alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=4,
                                      n_tries=3, cuts="entropy", seed=0)  # fmt: skip
    assert r.proposals == 12 and toy.calls <= 3 + 12
    assert r.extra["n_tries"] == 3 and r.extra["cuts"] == "entropy"


@pytest.mark.parametrize(("toy_fn", "alpha", "t_max", "moves"), [
    (eos_toy, 4.0, 5, "decision"), (trap_toy, 4.0, 4, "plain"), (sharp_toy, 2.0, 3, "differ"),
])  # fmt: skip
async def test_block_tries_keep_the_chain_exact(toy_fn, alpha, t_max, moves) -> None:  # type: ignore[no-untyped-def]
    """Block tries change where each block's chain starts, not its steps: still p^α at the noise floor."""
    toy = toy_fn()
    n = 1500
    params = SamplerParams(alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=30, cuts="entropy", moves=moves,
                           block_tries=3)  # fmt: skip
    run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(11))
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) <= 1.5 * floor + 0.01


async def test_block_tries_start_each_block_nearer_the_target() -> None:
    """With one step per block, resampling each block from eight draws by importance weight lands far
    nearer p^α than one draw does (sharp toy, α = 4: TV 0.25 → 0.06); a block's draws are one batched call."""
    toy = sharp_toy()
    t_max = toy.max_len + 1
    want = exact.power_distribution(toy, t_max, 4.0)
    params = SamplerParams(alpha=4.0, max_new_tokens=t_max, block_size=2, n_mcmc=1, cuts="entropy", moves="decision")
    tv = {}
    for k in (1, 8):
        run = await mh_chains(toy, P, params.with_(block_tries=k), n_chains=1500, target=Target(4.0),
                              rng=np.random.default_rng(5))  # fmt: skip
        tv[k] = exact.tv_distance(exact.empirical(s.tokens for s in run.final), want)
    assert tv[8] < 0.5 * tv[1]
    eos = eos_toy()
    r = await genesis_ps.power_sample(eos, "q", params.with_(block_tries=4, max_new_tokens=5), method="mh", seed=0)
    assert r.extra["block_tries"] == 4 and r.tokens_generated >= 4 * 2
    assert eos.calls <= 3 + r.proposals  # one call per block, one per step


async def test_adaptive_mh_stops_early_but_runs_the_last_block_in_full() -> None:
    toy = eos_toy()
    full = SamplerParams(alpha=4.0, max_new_tokens=5, block_size=2, n_mcmc=30)
    a = await mh_chains(toy, P, full.with_(adaptive=True), n_chains=1500, target=Target(4.0),
                        rng=np.random.default_rng(3))  # fmt: skip
    b = await mh_chains(toy, P, full, n_chains=1500, target=Target(4.0), rng=np.random.default_rng(3))
    assert a.meter.tokens_generated < 0.9 * b.meter.tokens_generated
    assert 1500 * 30 <= a.steps < b.steps == 1500 * 30 * 3  # the last of three blocks: all 30 steps
    want = exact.power_distribution(toy, 5, 4.0)
    floor = exact.noise_floor(want, 1500, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in a.final), want) <= 1.5 * floor + 0.01


async def test_cold_proposals_at_large_alpha_are_flagged_as_unmixed() -> None:
    toy = trap_toy()
    cold = SamplerParams(alpha=16.0, max_new_tokens=4, block_size=2, n_mcmc=30, proposal_temperature=1 / 16)
    run = await mh_chains(toy, P, cold, n_chains=400, target=Target(16.0), rng=np.random.default_rng(1))
    assert sum(m == 0 for m in run.first_token_moves) / 400 > 0.9
    warm = await mh_chains(toy, P, cold.with_(proposal_temperature=None), n_chains=400, target=Target(16.0),
                           rng=np.random.default_rng(1))  # fmt: skip
    assert sum(m == 0 for m in warm.first_token_moves) / 400 < 0.5
    want = exact.power_distribution(toy, 4, 16.0)
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) > 0.9
    r = await genesis_ps.power_sample(toy, "q", cold, method="mh", seed=2)
    assert r.extra["first_token_changes"] == 0 and "first token" in r.extra["mixing_warning"]


def test_one_alpha() -> None:
    with pytest.raises(ConfigError) as e:
        Target(math.inf)
    assert e.value.param == "alpha"


async def test_params_alpha_and_target_alpha_must_agree() -> None:
    with pytest.raises(ConfigError) as e:
        await mh_chains(eos_toy(), P, SamplerParams(alpha=4.0, max_new_tokens=3), target=Target(2.0),
                        rng=np.random.default_rng(0))  # fmt: skip
    assert e.value.param == "alpha"


class NoEntropyToy(ToyLM):
    """The EOS toy claiming no entropies, as a provider without top-k log-probs would."""

    def __init__(self) -> None:
        base = eos_toy()
        super().__init__("eos", "ab", lambda pre: np.exp(base.logp_table[base.node_of(pre)]).tolist(), max_len=4)
        self.capabilities = Capabilities(logprobs="exact", prefix_continuation=True, eos_token_id=self.eos)


async def test_entropy_cuts_without_top_k_fail_before_any_model_call() -> None:
    toy = NoEntropyToy()
    for call in (
        genesis_ps.power_sample(toy, "q", method="mh", cuts="entropy", max_new_tokens=4, seed=0),
        mh_chains(toy, P, SamplerParams(cuts="entropy", max_new_tokens=4), target=Target(4.0),
                  rng=np.random.default_rng(0)),
    ):  # fmt: skip
        with pytest.raises(ConfigError) as e:
            await call
        assert e.value.param == "cuts"
    assert toy.calls == 0


@pytest.mark.parametrize(("field", "value"), [
    ("cuts", "middle"), ("n_tries", 0), ("patience", 0), ("rollouts", 0), ("candidates", 0), ("horizon", 0),
    ("resampler", "multinomial"), ("ramp_tokens", -1), ("decision_entropy", -0.5), ("max_rounds", 0),
    ("adaptive", "yes"), ("block_tries", 0), ("block_tries", 1.5),
])  # fmt: skip
def test_bad_new_fields_name_themselves(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        SamplerParams(**{field: value})  # type: ignore[arg-type]
    assert e.value.param == field


async def test_consensus_picks_the_majority_answer_of_the_chain() -> None:
    toy = eos_toy()
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(toy, "q", method="mh", selection="consensus", max_new_tokens=5, seed=0)
    assert e.value.param == "answer_extractor" and toy.calls == 0

    def first(text: str) -> str | None:
        return text[:1] or None

    r = await genesis_ps.power_sample(toy, "q", method="mh", selection="consensus", max_new_tokens=5, n_mcmc=20,
                                      block_size=2, seed=3, extract_answer=first)  # fmt: skip
    assert r.selection == "consensus" and r.extra["consensus_answer"] == first(r.text)
