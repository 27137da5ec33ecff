"""The one conformance suite every TokenModel adapter passes (subclass it, declare capabilities).

A subclass provides a ``model`` fixture and declares what the adapter should report:
``logprobs`` (exact/top_k/none), ``prefix_continuation``, ``base_temperature_proposals`` (proposals are
drawn at temperature 1 whatever is asked, reported as logq = logp), ``validates_inputs`` and
``seed_reproducible``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError
from genesis_ps.generation import generate
from genesis_ps.sampling import Prompt, SamplerParams, TokenModel

PROMPT = Prompt.user("Name an animal.")


def _check_segment(seg: Any, limit: int) -> None:
    assert len(seg.logp) == len(seg.logq)
    assert 1 <= seg.n_tokens <= limit
    assert all(math.isfinite(v) and v <= 0.0 for v in (*seg.logp, *seg.logq))
    if seg.tokens:
        assert len(seg.tokens) == seg.n_tokens
    else:
        assert isinstance(seg.text, str)


class ConformanceSuite:
    logprobs: ClassVar[str]
    prefix_continuation: ClassVar[bool]
    base_temperature_proposals: ClassVar[bool] = False
    validates_inputs: ClassVar[bool] = True
    seed_reproducible: ClassVar[bool] = True

    @pytest.fixture
    def model(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def test_is_a_token_model(self, model: Any) -> None:
        assert isinstance(model, TokenModel)
        assert isinstance(model.provider, str) and model.provider
        assert isinstance(model.model, str) and model.model

    def test_declares_its_capabilities(self, model: Any) -> None:
        caps = model.capabilities
        assert caps.logprobs == self.logprobs
        assert caps.prefix_continuation is self.prefix_continuation
        assert caps.max_batch >= 1

    async def test_generate_single_shot(self, model: Any) -> None:
        c = await model.generate(PROMPT, max_new_tokens=6, seed=1)
        assert isinstance(c.text, str)
        assert 0 <= c.tokens_generated <= 6
        if c.logp is not None:
            assert all(math.isfinite(v) and v <= 0 for v in c.logp)

    async def test_extend_returns_aligned_segments(self, model: Any) -> None:
        if self.logprobs == "none":
            with pytest.raises(LogprobsUnsupportedError):
                await model.extend(PROMPT, [()], 6, 1.0, seed=1)
            return
        segs = await model.extend(PROMPT, [(), (), ()], 6, 1.0, seed=1)
        assert len(segs) == 3
        for seg in segs:
            _check_segment(seg, 6)

    async def test_logq_is_logp_at_temperature_one(self, model: Any) -> None:
        if self.logprobs == "none":
            pytest.skip("no log-probs")
        for seg in await model.extend(PROMPT, [(), ()], 6, 1.0, seed=2):
            assert seg.logq == pytest.approx(seg.logp, abs=1e-5)
            assert not seg.approx_logq

    async def test_proposal_temperature_is_reported_honestly(self, model: Any) -> None:
        if self.logprobs == "none":
            pytest.skip("no log-probs")
        segs = await model.extend(PROMPT, [(), ()], 6, 0.5, seed=3)
        for seg in segs:
            _check_segment(seg, 6)
            if self.base_temperature_proposals:
                assert seg.logq == seg.logp and not seg.approx_logq
            else:
                assert seg.approx_logq is (self.logprobs == "top_k")
        if not self.base_temperature_proposals:
            # at τ = 1/2, log q = 2·log p − log Z with Z ≤ 1, so log q ≥ 2·log p for every token
            assert all(q >= 2 * p - 1e-4 for s in segs for p, q in zip(s.logp, s.logq, strict=True))
            assert any(q != p for s in segs for p, q in zip(s.logp, s.logq, strict=True))

    async def test_prefix_continuation_as_declared(self, model: Any) -> None:
        if self.logprobs == "none":
            pytest.skip("no log-probs")
        if not self.prefix_continuation:
            with pytest.raises((CapabilityError, ValueError)):
                await model.extend(PROMPT, [(1, 2)], 4, 1.0)
            return
        first = (await model.extend(PROMPT, [()], 6, 1.0, seed=4))[0]
        keep = first.tokens[:1]
        cont = (await model.extend(PROMPT, [keep, keep], [3, 2], 1.0, seed=5))
        _check_segment(cont[0], 3)
        _check_segment(cont[1], 2)
        assert isinstance(model.decode(list(keep) + list(cont[0].tokens)), str)

    async def test_seeded_extend_is_reproducible(self, model: Any) -> None:
        if self.logprobs == "none" or not self.seed_reproducible:
            pytest.skip("no log-probs, or no seed")
        a = await model.extend(PROMPT, [()], 6, 1.0, seed=11)
        b = await model.extend(PROMPT, [()], 6, 1.0, seed=11)
        assert (a[0].tokens, a[0].text, a[0].logp) == (b[0].tokens, b[0].text, b[0].logp)

    async def test_rejects_invalid_arguments_before_any_call(self, model: Any) -> None:
        if not self.validates_inputs:
            pytest.skip("this model does not validate its inputs")
        with pytest.raises(ConfigError) as info:
            await model.generate(PROMPT, max_new_tokens=4, temperature=-1.0)
        assert info.value.param == "temperature"
        if self.logprobs != "none":
            with pytest.raises(ConfigError) as info:
                await model.extend(PROMPT, [()], -1, 1.0)
            assert info.value.param == "max_new_tokens"

    async def test_power_sampling_runs_or_falls_back_visibly(self, model: Any) -> None:
        pytest.importorskip("genesis_ps.sampling.imh")
        params = SamplerParams(method="mh", n_mcmc=2, block_size=3, max_new_tokens=6, seed=7)
        result = await generate(model, PROMPT, params)
        if self.logprobs == "none":
            assert result.fallback == "no_logprobs"
            assert result.method == "single"
        else:
            assert result.fallback is None
            assert result.method == ("mh" if self.prefix_continuation else "imh")
            assert result.tokens_generated >= result.tokens_returned
            assert result.approx_logprobs is (self.logprobs == "top_k")

    def test_decode_of_nothing_is_empty(self, model: Any) -> None:
        assert model.decode([]) == ""
