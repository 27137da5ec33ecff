"""How values and nodes are wired into LangGraph: JSON forms of prompts and parameters (state stays
JSON-primitive), and node runnables that work under both ``invoke`` and ``ainvoke``.

Each node runs inside a span ``genesis_ps.node.<name>`` that is a child of the run's span (its ids travel
in the state's ``trace``), with its duration and status counted in the metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import asdict
from typing import Any

from langchain_core.runnables import RunnableLambda

from genesis_ps import observability as obs
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt

__all__ = [
    "anode",
    "bare",
    "emit",
    "params_dict",
    "params_of",
    "prompt_dict",
    "prompt_of",
    "read_route",
    "run_sync",
    "snode",
]

State = Mapping[str, Any]
Update = dict[str, Any]


def prompt_dict(p: Prompt) -> dict[str, Any]:
    return {"messages": [list(m) for m in p.messages], "raw": p.raw}


def prompt_of(d: Mapping[str, Any]) -> Prompt:
    return Prompt(messages=tuple((str(r), str(c)) for r, c in d.get("messages") or ()), raw=d.get("raw"))


def params_dict(p: SamplerParams) -> dict[str, Any]:
    return asdict(p)


def params_of(d: Mapping[str, Any]) -> SamplerParams:
    return SamplerParams(**dict(d))


def read_route(state: State) -> str:
    """The conditional edges' path function: the node the last step chose."""
    return str(state["route"])


_LOOP: list[asyncio.AbstractEventLoop | None] = [None]
_LOOP_LOCK = threading.Lock()


def _sync_loop() -> asyncio.AbstractEventLoop:
    """The one event loop (on a daemon thread) that runs the nodes of synchronous ``invoke`` calls, so
    async SDK clients and their connection pools always see the same loop."""
    with _LOOP_LOCK:
        loop = _LOOP[0]
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="genesis_ps-sync", daemon=True).start()
            _LOOP[0] = loop
        return loop


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from synchronous code (a sync ``invoke``), in the caller's context
    (LangGraph's config, our layer and span), on :func:`_sync_loop`."""
    loop = _sync_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:  # a sync invoke from a coroutine on that very loop: it cannot wait on itself
        raise RuntimeError("graph.invoke() was called from inside a genesis_ps node's event loop; use ainvoke")
    ctx = contextvars.copy_context()
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(coro, context=ctx)

        def finish(t: asyncio.Task[Any]) -> None:
            if t.cancelled():
                done.cancel()
            elif t.exception() is not None:
                done.set_exception(t.exception())
            else:
                done.set_result(t.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    return done.result()


def _trace(state: State) -> Any:
    """The run's trace record: a subgraph's ``trace``, or the top level's under ``genesis_ps``."""
    return state.get("trace") or (state.get("genesis_ps") or {}).get("trace")


def _attrs(state: State) -> dict[str, Any]:
    task = state.get("task") or {}
    return {"task_id": task.get("id"), "task_type": task.get("type")} if task else {}


def anode(name: str, fn: Callable[[State], Awaitable[Update]], *, layer: str | None = None) -> RunnableLambda[Any, Any]:
    """A node from an async step: awaited under ``ainvoke``, run on its own loop under ``invoke``."""

    async def arun(state: State) -> Update:
        with obs.node_span(name, parent=_trace(state), **_attrs(state)), obs.layer_scope(layer or obs.current_layer()):
            return await fn(state)

    def run(state: State) -> Update:
        result: Update = run_sync(arun(state))
        return result


    return RunnableLambda(run, afunc=arun, name=name)


def bare(name: str, fn: Callable[[State], Update]) -> RunnableLambda[Any, Any]:
    """A synchronous node that opens its own spans (``start``, which opens the run's)."""

    async def arun(state: State) -> Update:
        return fn(state)

    return RunnableLambda(fn, afunc=arun, name=name)


def snode(name: str, fn: Callable[[State], Update], *, layer: str | None = None) -> RunnableLambda[Any, Any]:
    """A node from a synchronous step (no model call), the same under ``invoke`` and ``ainvoke``."""

    def run(state: State) -> Update:
        with obs.node_span(name, parent=_trace(state), **_attrs(state)), obs.layer_scope(layer or obs.current_layer()):
            return fn(state)

    async def arun(state: State) -> Update:
        return run(state)

    return RunnableLambda(run, afunc=arun, name=name)


def emit(event: dict[str, Any]) -> None:
    """Send a progress event to the run's ``custom`` stream (a no-op outside a run)."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except (RuntimeError, KeyError, AttributeError):
        pass
