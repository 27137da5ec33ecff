"""The graph factory that ``langgraph.json`` names, so LangGraph's own server (``langgraph dev``,
LangGraph Platform) can serve the graph::

    {"dependencies": ["."], "graphs": {"genesis_ps": "./src/genesis_ps/graph/server.py:make_graph"}}

The model comes from the settings (``POWER_SAMPLING_PROVIDER`` / ``_MODEL``, default the embedded
model), flags and parameters from ``POWER_SAMPLING_*``. The server supplies persistence, so the graph is
compiled without a checkpointer of its own.
"""

from __future__ import annotations

from typing import Any

from genesis_ps.settings import Settings

__all__ = ["make_graph"]


def make_graph(config: Any = None) -> Any:
    """Build the compiled graph from the environment (``config`` is the server's, unused)."""
    from genesis_ps.graph.build import build_graph
    from genesis_ps.providers.registry import build_model

    settings = Settings.from_env()
    style = "worfbench" if settings.provider == "embedded" else "json"
    model = build_model(settings.provider, model=settings.model)
    return build_graph(model, settings=settings, temperature=0.3, plan_max_new_tokens=128,
                       planner_options={"style": style})  # fmt: skip
