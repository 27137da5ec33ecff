"""The graph factory that ``langgraph.json`` names, so LangGraph's own server (``langgraph dev``,
LangGraph Platform) can serve the graph::

    {"dependencies": ["."], "graphs": {"genesis_ps": "./src/genesis_ps/graph/server.py:make_graph"}}

The model comes from the settings (``POWER_SAMPLING_PROVIDER`` / ``_MODEL``, default the embedded
model), flags and parameters from ``POWER_SAMPLING_*``. The server supplies persistence, so the graph is
compiled without a checkpointer of its own. The server calls the factory on its event loop: the model
loads once, on a worker thread (loading torch and the weights would block the loop).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from genesis_ps.settings import Settings

__all__ = ["make_graph"]


@functools.cache
def _model(provider: str, name: str | None) -> Any:
    from genesis_ps.providers.registry import build_model

    return build_model(provider, model=name)


def _build() -> Any:
    from genesis_ps.graph.build import build_graph

    settings = Settings.from_env()
    style = "worfbench" if settings.provider == "embedded" else "json"
    return build_graph(_model(settings.provider, settings.model), settings=settings, temperature=0.3,
                       plan_max_new_tokens=128, planner_options={"style": style})  # fmt: skip


async def make_graph(config: Any = None) -> Any:
    """The compiled graph, built from the environment (``config`` is the server's, unused)."""
    return await asyncio.to_thread(_build)
