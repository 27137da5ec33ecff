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
    assert "3/3 tasks done" in proc.stdout
    assert "Done: Deploy the site" in proc.stdout
    assert "way 3 (chat model):" in proc.stdout
