"""Toy LMs: exact log-probs, vectorised sampling that matches the enumerated distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genesis_ps.sampling import Prompt, TokenModel
from genesis_ps.testing import exact
from genesis_ps.testing.toys import ToyLM, eos_toy, random_toy, sharp_toy

P = Prompt.text("")


def test_toy_is_a_token_model_with_exact_capabilities() -> None:
    toy = eos_toy()
    assert isinstance(toy, TokenModel)
    assert toy.capabilities.logprobs == "exact"
    assert toy.capabilities.prefix_continuation
    assert toy.capabilities.eos_token_id == toy.eos == 2


async def test_extend_reports_exact_logp_and_logq_per_token() -> None:
    toy = eos_toy()
    tau = 0.5
    logq_table, _ = toy.tempered(tau)
    segs = await toy.extend(P, [(), (1,), (1, 1)], [4, 2, 1], tau, seed=3)
    assert [s.n_tokens <= m for s, m in zip(segs, [4, 2, 1], strict=True)] == [True] * 3
    for pre, seg in zip([(), (1,), (1, 1)], segs, strict=True):
        node = toy.node_of(pre)
        for tok, lp, lq in zip(seg.tokens, seg.logp, seg.logq, strict=True):
            assert lp == pytest.approx(float(toy.logp_table[node, tok]))
            assert lq == pytest.approx(float(logq_table[node, tok]))
            node = int(toy.child[node, tok]) if tok != toy.eos else -1
        assert seg.eos == (seg.tokens[-1] == toy.eos)
        assert toy.eos not in seg.tokens[:-1]
    # tempered rows are normalised and sharpen the base distribution
    row = np.exp(logq_table[0])
    assert row.sum() == pytest.approx(1.0)
    assert row[0] / row[1] == pytest.approx((0.55 / 0.45) ** 2)


async def test_same_seed_same_samples_and_different_seed_differs() -> None:
    toy = random_toy(1)
    a = await toy.extend(P, [()] * 50, 4, 1.0, seed=7)
    b = await toy.extend(P, [()] * 50, 4, 1.0, seed=7)
    c = await toy.extend(P, [()] * 50, 4, 1.0, seed=8)
    assert a == b
    assert [s.tokens for s in a] != [s.tokens for s in c]


def test_enumeration_is_a_distribution_with_and_without_truncation() -> None:
    for toy in (sharp_toy(), eos_toy(), random_toy(0)):
        for t_max in range(1, toy.max_len + 3):
            seqs = exact.enumerate_sequences(toy, t_max)
            assert math.fsum(math.exp(v) for v in seqs.values()) == pytest.approx(1.0)
            assert all(len(s) <= t_max for s in seqs)
            assert all(s[-1] == toy.eos or len(s) == t_max for s in seqs)


def test_sharp_toy_separates_low_temperature_from_power() -> None:
    toy = sharp_toy()
    for alpha in (2.0, 4.0):
        p_alpha = exact.power_distribution(toy, 3, alpha)
        low = exact.temperature_distribution(toy, 3, 1 / alpha)
        first_b_power = sum(v for s, v in p_alpha.items() if s[0] == 1)
        first_b_low = sum(v for s, v in low.items() if s[0] == 1)
        assert first_b_power > 0.5 > first_b_low
        assert exact.tv_distance(p_alpha, low) >= 0.2


def test_eos_toy_ends_at_varying_lengths() -> None:
    seqs = exact.enumerate_sequences(eos_toy(), 5)
    assert {len(s) for s in seqs} == {2, 3, 4, 5}


async def test_sampling_matches_the_exact_temperature_distribution() -> None:
    toy = eos_toy()
    n = 20000
    segs = await toy.extend(P, [()] * n, 5, 0.5, seed=11)
    emp = exact.empirical(s.tokens for s in segs)
    want = exact.temperature_distribution(toy, 5, 0.5)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(emp, want) <= 1.5 * floor + 0.005


async def test_generate_and_decode() -> None:
    toy = sharp_toy()
    greedy = await toy.generate(P, max_new_tokens=5, temperature=0)
    assert greedy.text == "AA" and greedy.finish_reason == "stop" and greedy.tokens_generated == 3
    c = await toy.generate(P, max_new_tokens=1, temperature=1.0, seed=1)
    assert c.finish_reason == "length" and c.tokens_generated == 1 and len(c.text) == 1
    assert toy.decode([1, 2, toy.eos]) == "BC"


async def test_bad_inputs_are_rejected() -> None:
    toy = sharp_toy()
    with pytest.raises(ValueError, match="probability 0"):
        await toy.extend(P, [(0, 0, 0)], 1, 1.0)  # beyond the toy's letters: only EOS can follow
    with pytest.raises(ValueError, match="temperature"):
        await toy.extend(P, [()], 1, 0.0)
    with pytest.raises(ValueError, match="sum"):
        ToyLM("bad", "ab", lambda pre: [0.5, 0.6, 0.0], max_len=2)


def test_random_toy_is_reproducible_from_its_seed() -> None:
    a, b, c = random_toy(3), random_toy(3), random_toy(4)
    assert np.array_equal(a.logp_table, b.logp_table)
    assert not np.array_equal(a.logp_table, c.logp_table)
    assert a.logp_table[0, a.eos] == -np.inf  # no empty sequence


def test_tv_and_noise_floor_helpers() -> None:
    p = {(0,): 0.5, (1,): 0.5}
    assert exact.tv_distance(p, p) == 0.0
    assert exact.tv_distance(p, {(2,): 1.0}) == pytest.approx(1.0)
    assert exact.tv_distance(p, {(0,): 1.0}) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    assert exact.noise_floor(p, 100, rng) > exact.noise_floor(p, 10000, rng) > 0
    with pytest.raises(ValueError):
        exact.empirical([])
