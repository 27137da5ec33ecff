"""Live calls to the real provider APIs: run only with ``-m live`` style opt-in via keys in the env.

Each test skips unless its key is set; nothing here runs in offline CI.
"""

from __future__ import annotations

import os

import pytest

from genesis_ps.providers import hosted
from genesis_ps.sampling import Prompt

pytestmark = pytest.mark.live
PROMPT = Prompt.user("Name one animal. One word.")


def _need(var: str) -> None:
    if not os.environ.get(var):
        pytest.skip(f"${var} not set")


async def test_openai_chat_live() -> None:
    _need("OPENAI_API_KEY")
    model = hosted.build("openai")
    segs = await model.extend(PROMPT, [(), ()], 8, 0.25, seed=1)
    assert len(segs) == 2 and all(s.n_tokens >= 1 and s.logq == s.logp for s in segs)


async def test_gemini_live() -> None:
    if not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")):
        pytest.skip("$GEMINI_API_KEY not set")
    model = hosted.build("gemini")
    segs = await model.extend(PROMPT, [()], 8, 1.0, seed=1)
    assert segs[0].n_tokens >= 1 and all(v <= 0 for v in segs[0].logp)


async def test_anthropic_live() -> None:
    _need("ANTHROPIC_API_KEY")
    model = hosted.build("anthropic")
    c = await model.generate(PROMPT, max_new_tokens=8)
    assert c.text and c.logp is None and c.tokens_generated >= 1
