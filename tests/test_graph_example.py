"""The example parent app runs offline with the scripted model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_parent_app_example_runs_scripted() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "parent_app.py"), "--scripted"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "way 1 (as a node): 2 replies" in out and "way 2 (from a node): 2 replies" in out
    # each turn of the conversation was planned afresh: the second reply answers the second request
    assert out.count("AI: Done: Check: Now write the launch announcement.") == 2
    assert "(2/2 tasks, cost ×1.0)" in out
    assert "way 3 (chat model fallback): 'site deployed' via langchain/FakeListChatModel" in out
