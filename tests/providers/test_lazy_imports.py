"""Importing the adapters loads no provider SDK and no torch (STYLE.md §6)."""

from __future__ import annotations

import subprocess
import sys


def test_adapter_modules_import_no_sdk() -> None:
    code = (
        "import sys\n"
        "import genesis_ps.providers, genesis_ps.providers.hosted.openai_chat, genesis_ps.providers.hosted.gemini\n"
        "import genesis_ps.providers.hosted.openai_completions, genesis_ps.providers.hosted.anthropic_messages\n"
        "import genesis_ps.providers.resilience, genesis_ps.providers.normalize, genesis_ps.providers.topk\n"
        "bad = [m for m in ('openai', 'anthropic', 'google.genai', 'torch', 'transformers', 'httpx2')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
