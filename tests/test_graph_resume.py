"""Checkpoints at every super-step: a process killed (SIGKILL) inside a SICA loop or an SE-Darwin
generation resumes at its last step, without redoing the steps that finished. The killed run uses
LangGraph's ``durability="sync"`` (as ``genesis-ps run`` does): each checkpoint is on disk before the next
step starts, so not even the last one is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from genesis_ps import build_graph
from genesis_ps.evaluators import CodeEvaluator, SandboxLimits
from genesis_ps.evaluators.isolation import runtime
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

BUGGY = "STRATEGY: subtract\n```python\ndef add(a, b):\n    return a - b\n```"
FIXED = "STRATEGY: use +\n```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "def test_add():\n    assert add(2, 3) == 5\n"
DAGS = {
    "sica": {"tasks": [{"id": "1", "description": "Work out 2 + 2", "type": "reasoning", "depends_on": []}]},
    "darwin": {"tasks": [{"id": "1", "description": "Write add(a, b)", "type": "code", "depends_on": []}]},
}
KILL_ON = {"sica": "Previous answer", "darwin": "previous attempt failed"}  # the refinement; the revision


def respond(prompt: Prompt) -> str:
    text = prompt.flat_text()
    if "Critique the proposed answer" in text:
        return "SCORE: 9\nVERDICT: PASS" if "is 4" in text else "SCORE: 2\nVERDICT: REVISE\nISSUES:\n- 2 + 2 is 4"
    if "Previous answer" in text:
        return "2 + 2 is 4."
    if "add(a, b)" in text:
        return FIXED if "previous attempt failed" in text else BUGGY
    return "2 + 2 is 5."


def build(model: Any, saver: Any) -> Any:
    ev = CodeEvaluator(TESTS, limits=SandboxLimits(timeout_s=5.0))
    return build_graph(model, settings=Settings(), checkpointer=saver, evaluators={"code": ev})


SCRIPT = textwrap.dedent('''
    import asyncio, os, signal, sys
    sys.path.insert(0, sys.argv[3])
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from genesis_ps.testing import ScriptedModel
    from test_graph_resume import DAGS, KILL_ON, build, respond

    db, layer = sys.argv[1], sys.argv[2]

    def dying(prompt):
        if KILL_ON[layer] in prompt.flat_text():
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-call, no chance to clean up
        return respond(prompt)

    async def main():
        async with AsyncSqliteSaver.from_conn_string(db) as saver:
            g = build(ScriptedModel(dying), saver)
            await g.ainvoke({"request": "r", "dag": DAGS[layer]}, {"configurable": {"thread_id": "k"}},
                            durability="sync")  # each super-step's checkpoint is written before the next starts

    asyncio.run(main())
''')


_NO_BOUNDARY = pytest.mark.skipif(not runtime().boundary, reason=f"SE-Darwin runs code: {runtime().detail}")


@pytest.mark.parametrize("layer", ["sica", pytest.param("darwin", marks=_NO_BOUNDARY)])
async def test_a_killed_run_resumes_at_its_last_step(layer: str, tmp_path: Path) -> None:
    db = str(tmp_path / "ckpt.sqlite")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    proc = subprocess.run([sys.executable, str(script), db, layer, str(Path(__file__).parent)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    model = ScriptedModel(respond)
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        g = build(model, saver)
        snap = await g.aget_state({"configurable": {"thread_id": "k"}})
        assert snap.next == (layer,)  # stopped inside the layer's subgraph
        out = await g.ainvoke(None, {"configurable": {"thread_id": "k"}})
    task = out["tasks"][0]
    calls = [p.flat_text() for p in model.calls]
    assert any(KILL_ON[layer] in c for c in calls[:2])  # the resumed run redoes the call that was cut off …
    if layer == "sica":  # … and never redoes the draft or the first critique
        assert len(calls) == 2 and "Critique the proposed answer" in calls[1]
        assert task["output"] == "2 + 2 is 4." and task["extra"]["sica"]["stop_reason"] == "threshold"
        assert task["extra"]["sica"]["model_calls"] == 4  # draft, critique, refine, critique: counted once each
    else:  # … and never redoes the initial population (its sibling in generation 1 may have finished first)
        assert not any("Write a complete, correct python solution" in c for c in calls)
        assert len(calls) <= 2 and all("Current solution" in c or KILL_ON[layer] in c for c in calls)
        assert task["score"] == 1.0 and task["extra"]["se_darwin"]["stop_reason"] == "target"
        assert task["extra"]["se_darwin"]["trajectories"] == 3  # t1 (population) kept, t2 and t3 of generation 1
