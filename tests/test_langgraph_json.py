"""``langgraph.json`` names an importable module-level graph factory, as ``langgraph dev`` expects."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from genesis_ps.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]


async def test_langgraph_json_serves_the_graph_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import genesis_ps.providers.registry as registry

    conf = json.loads((ROOT / "langgraph.json").read_text())
    assert conf["dependencies"] == ["."]
    path, _, attr = conf["graphs"]["genesis_ps"].partition(":")
    file = (ROOT / path).resolve()
    assert file.is_file() and attr
    spec = importlib.util.spec_from_file_location("langgraph_entry", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: list[str] = []

    def fake_build(provider: str, **kw: Any) -> ScriptedModel:
        built.append(provider)
        return ScriptedModel(['{"tasks": [{"id": "1", "description": "Say hi", "depends_on": []}]}', "hi"])

    monkeypatch.setattr(registry, "build_model", fake_build)
    monkeypatch.delenv("POWER_SAMPLING_PROVIDER", raising=False)
    graph = await getattr(module, attr)()
    assert built == ["embedded"]  # the settings' provider
    assert "plan:plan_prompt" in graph.get_graph(xray=True).nodes
    assert (await graph.ainvoke({"request": "Greet me"}))["answer"] == "hi"
    await getattr(module, attr)()
    assert built == ["embedded"]  # the model loads once, not per request
