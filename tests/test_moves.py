"""MH's differ and decision moves: the proposal law the ratio assumes, its terms' detailed balance, exact
chains on every toy, null moves without a model call, and bad input refused before any model work."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesis_ps
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling._common import EMPTY
from genesis_ps.sampling.cuts import decision_log_probs, differ_log_ratio, divergence_point
from genesis_ps.sampling.mh import mh_chains
from genesis_ps.sampling.moves import cut_log_probs_of, plan_moves
from genesis_ps.sampling.protocol import Capabilities
from genesis_ps.testing import exact
from genesis_ps.testing.toys import ToyLM, eos_toy, random_toy, sharp_toy, trap_toy

P = Prompt.text("")


def test_the_divergence_point_has_the_law_of_the_first_difference() -> None:
    logq = np.log([0.7, 0.5, 0.9, 1.0])  # the last token (say EOS) is certain: nothing can differ there
    q_head = np.concatenate(([1.0], np.cumprod(np.exp(logq))[:-1]))
    want = q_head * (1 - np.exp(logq)) / (1 - np.exp(logq).prod())
    us = np.random.default_rng(0).random(40000)
    got = Counter(divergence_point(logq, u) for u in us.tolist())
    assert got[3] == 0
    for k in range(3):
        assert abs(got[k] / len(us) - want[k]) < 0.01
    assert divergence_point([0.0, 0.0], 0.5) is None  # a certain suffix has no other state
    assert divergence_point([], 0.5) is None


@pytest.mark.parametrize("make,tau", [(random_toy, 1 / 3), (eos_toy, 0.5), (trap_toy, 1.0)])
async def test_a_differ_proposal_is_the_proposal_conditioned_on_differing(make, tau) -> None:  # type: ignore[no-untyped-def]
    # from the empty prefix (cut 0), the suffix is the whole sequence, whose law under q is enumerable
    toy = make()
    t_max = toy.max_len + 1
    q = exact.temperature_distribution(toy, t_max, tau)
    x = EMPTY.grow((await toy.extend(P, [()], t_max, tau, seed=1))[0])
    rng = np.random.default_rng(2)
    n = 30000
    starts = [divergence_point(x.logq, u) for u in rng.random(n).tolist()]
    assert None not in starts
    segs = await toy.extend(P, [x.tokens[:k] for k in starts], [t_max - k for k in starts],  # type: ignore[misc]
                            tau, seed=3, exclude_first=[x.tokens[k] for k in starts])  # type: ignore[index]  # fmt: skip
    ys = [x.splice(k, seg).tokens for k, seg in zip(starts, segs, strict=True)]  # type: ignore[arg-type]
    assert x.tokens not in ys
    want = {y: p / (1 - q[x.tokens]) for y, p in q.items() if y != x.tokens}
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(ys), want) <= 1.5 * floor + 0.005


@settings(max_examples=80, deadline=None)
@given(st.floats(0.001, 0.998), st.floats(0.001, 0.998))
def test_the_differ_term_is_the_reverse_over_forward_proposal_density(qx: float, qy: float) -> None:
    qy = min(qy, 1 - qx)  # two different suffixes of one prefix: their probabilities add up to at most 1
    fwd, back = qy / (1 - qx), qx / (1 - qy)  # Q(y | x), Q(x | y)
    term = differ_log_ratio(math.log(qx), math.log(qy))
    assert math.log(back / fwd) == pytest.approx(math.log(qx) - math.log(qy) + term, abs=1e-9)
    assert term == pytest.approx(-differ_log_ratio(math.log(qy), math.log(qx)), abs=1e-12)


def test_decision_cuts_weigh_the_token_before_an_entropy_jump() -> None:
    # sharp's "A?$": H = 0.67 (first token), 1.39 (after A), 0 (EOS certain): the jump is after position 0
    # at τ = 1/3: q(A) = 0.77, q(letter | A) = 0.25, q(EOS | A?) = 1
    logq = np.log([0.77, 0.25, 1.0])
    lp = decision_log_probs(3, [0.673, 1.386, 0.0], logq)
    assert math.isclose(float(np.exp(lp).sum()), 1.0)
    assert np.exp(lp[0]) > 0.8 and np.exp(lp[1]) > 0
    assert np.exp(lp[2]) < 1e-200  # EOS was certain there: no other token to change to
    # (entropy cuts put half their weight on position 1 instead: the jump itself)
    eps = 0.05 * (0.673 + 1.386) / 3 + 1e-6
    w = np.array([(1.386 - 0.673 + eps) * 0.23, eps * 0.75, 0.0])
    assert np.allclose(np.exp(lp), w / w.sum())
    with pytest.raises(ValueError):
        decision_log_probs(3, [0.1], logq)


@pytest.mark.parametrize(("make", "alpha", "moves", "cuts", "early"), [
    (sharp_toy, 4.0, "differ", "uniform", False), (sharp_toy, 2.0, "decision", "entropy", True),
    (eos_toy, 4.0, "decision", "entropy", False), (eos_toy, 2.0, "differ", "entropy", True),
    (random_toy, 4.0, "decision", "entropy", True), (random_toy, 2.0, "differ", "uniform", True),
    (trap_toy, 4.0, "decision", "uniform", True), (trap_toy, 2.0, "decision", "entropy", False),
])  # fmt: skip
async def test_differ_and_decision_moves_reach_the_noise_floor(make, alpha, moves, cuts, early) -> None:  # type: ignore[no-untyped-def]
    toy = make()
    t_max, n = toy.max_len + 1, 1500
    params = SamplerParams(alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=12, cuts=cuts, moves=moves,
                           early_reject=early)  # fmt: skip
    run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(11))
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) <= 1.5 * floor + 0.01
    assert run.accepted > 0 and (run.early_rejected > 0) == early


async def test_decision_moves_mix_both_toys_where_either_move_alone_does_not_yet() -> None:
    # sharp α = 4 needs the first token changed (A -> B), which differ moves rarely propose; random α = 4
    # needs the first token kept and the next one re-drawn, which a change at the entropy cut rarely does
    tv = {}
    for toy, steps in ((sharp_toy(), 3), (random_toy(), 6)):
        want = exact.power_distribution(toy, toy.max_len + 1, 4.0)
        for name, kw in (("differ", {"moves": "differ"}), ("change", {"change_at_cut": 0.5}),
                         ("decision", {"moves": "decision"})):  # fmt: skip
            params = SamplerParams(alpha=4.0, max_new_tokens=toy.max_len + 1, block_size=2, n_mcmc=steps,
                                   cuts="entropy", **kw)  # type: ignore[arg-type]  # fmt: skip
            run = await mh_chains(toy, P, params, n_chains=3000, target=Target(4.0), rng=np.random.default_rng(5))
            tv[toy.model, name] = exact.tv_distance(exact.empirical(s.tokens for s in run.final), want)
    assert tv["sharp", "decision"] < 0.06 < 0.15 < tv["sharp", "differ"]
    assert tv["random0", "decision"] < 0.035 < 0.05 < tv["random0", "change"]


async def test_a_suffix_with_no_other_state_is_a_null_move_without_a_model_call() -> None:
    # sharp after "BC": EOS is certain, and so is the whole suffix from position 2 on
    toy = sharp_toy()
    x = EMPTY.grow((await toy.extend(P, [()], 3, 1.0, seed=0))[0])
    params = SamplerParams(alpha=2.0, max_new_tokens=3, moves="differ")
    seen: Counter[tuple[int, bool]] = Counter()
    for seed in range(200):
        m = plan_moves([x], [0], params, np.random.default_rng(seed), cut_log_probs_of)[0]
        seen[m.t, m.null] += 1
        assert m.null == (m.t == 2)
        if not m.null:
            assert m.t <= m.start < 2 and m.exclude == x.tokens[m.start]
    assert seen[2, True] > 0
    calls = toy.calls
    run = await mh_chains(toy, P, SamplerParams(alpha=2.0, max_new_tokens=3, block_size=3, n_mcmc=40, moves="differ"),
                          n_chains=100, target=Target(2.0), rng=np.random.default_rng(0))  # fmt: skip
    assert run.steps == 4000 and toy.calls > calls
    # a cut at 0 generates 3 tokens at most, at 1 at most 2, at 2 none (uniform cuts): below plain's 2 per step
    assert run.meter.tokens_generated < 100 * 3 + 4000 * 5 / 3


class NoExcludeToy(ToyLM):
    def __init__(self, entropy: str = "exact", exclude: bool = False) -> None:
        super().__init__("plain", "ab", lambda pre: [0.5, 0.3, 0.2] if pre else [0.6, 0.4, 0.0], max_len=3)
        self.capabilities = Capabilities(logprobs="exact", prefix_continuation=True, eos_token_id=self.eos,
                                         entropy=entropy, exclude_first=exclude)  # type: ignore[arg-type]  # fmt: skip


async def test_bad_moves_fail_before_any_model_call() -> None:
    with pytest.raises(ConfigError) as e:
        SamplerParams(moves="sideways")  # type: ignore[arg-type]
    assert e.value.param == "moves"
    with pytest.raises(ConfigError) as e:
        SamplerParams(moves="differ", change_at_cut=0.5)
    assert e.value.param == "change_at_cut"
    with pytest.raises(ConfigError) as e:
        SamplerParams(moves="decision", n_tries=2)
    assert e.value.param == "moves"
    toy = NoExcludeToy()
    for call in (genesis_ps.power_sample(toy, "q", method="mh", moves="differ", max_new_tokens=3, seed=0),
                 mh_chains(toy, P, SamplerParams(moves="differ", max_new_tokens=3), target=Target(4.0),
                           rng=np.random.default_rng(0))):  # fmt: skip
        with pytest.raises(ConfigError) as e:
            await call
        assert e.value.param == "moves"
    blind = NoExcludeToy(entropy="none", exclude=True)
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(blind, "q", method="mh", moves="decision", max_new_tokens=3, seed=0)
    assert e.value.param == "moves"
    assert toy.calls == 0 and blind.calls == 0
    # differ moves need no entropies
    r = await genesis_ps.power_sample(blind, "q", method="mh", moves="differ", max_new_tokens=3, n_mcmc=3, seed=0)
    assert r.extra["moves"] == "differ" and r.proposals > 0
