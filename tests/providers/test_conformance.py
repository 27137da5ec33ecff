"""Every adapter through the one conformance suite (HTTP adapters over their SDK's fake transport)."""

from __future__ import annotations

from typing import Any

import pytest
from provider_conformance import ConformanceSuite
from provider_fakes import adapter

from genesis_ps.testing import ScriptedModel


class TestScriptedModel(ConformanceSuite):
    logprobs = "exact"
    prefix_continuation = False
    base_temperature_proposals = True  # deterministic: logq = logp = 0 at any temperature
    validates_inputs = False
    seed_reproducible = False  # serves a queue

    @pytest.fixture
    def model(self) -> Any:
        return ScriptedModel(["a cat", "the mat", "a cat sat"])


class TestScriptedModelWithoutLogprobs(ConformanceSuite):
    logprobs = "none"
    prefix_continuation = False
    validates_inputs = False

    @pytest.fixture
    def model(self) -> Any:
        return ScriptedModel(["a cat"], logprobs="none")

    async def test_extend_returns_aligned_segments(self, model: Any) -> None:
        pytest.skip("ScriptedModel(logprobs='none') still serves segments; power_sample checks capabilities")


class TestOpenAIChat(ConformanceSuite):
    logprobs = "exact"
    prefix_continuation = False
    base_temperature_proposals = True

    @pytest.fixture
    def model(self) -> Any:
        return adapter("chat", top_logprobs=2)


class TestOpenAICompletionsText(ConformanceSuite):
    logprobs = "top_k"
    prefix_continuation = True

    @pytest.fixture
    def model(self) -> Any:
        return adapter("completions")


class TestOpenAICompletionsIds(ConformanceSuite):
    logprobs = "top_k"
    prefix_continuation = True

    @pytest.fixture
    def model(self) -> Any:
        return adapter("completions-ids")


class TestGemini(ConformanceSuite):
    logprobs = "exact"
    prefix_continuation = False
    base_temperature_proposals = True

    @pytest.fixture
    def model(self) -> Any:
        return adapter("gemini", top_logprobs=2)


class TestAnthropic(ConformanceSuite):
    logprobs = "none"
    prefix_continuation = False

    @pytest.fixture
    def model(self) -> Any:
        return adapter("anthropic")


@pytest.fixture(scope="module")
def embedded_model() -> Any:
    mod = pytest.importorskip("genesis_ps.providers.local.embedded", reason="the local backend is not installed")
    from genesis_ps.errors import ModelNotAvailableError

    try:
        return mod.load_embedded()
    except ModelNotAvailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
class TestEmbeddedLocalModel(ConformanceSuite):
    logprobs = "exact"
    prefix_continuation = True

    @pytest.fixture
    def model(self, embedded_model: Any) -> Any:
        return embedded_model
