"""OpenTelemetry spans and the layer context of generations.

Spans use the OpenTelemetry *API* only, imported at call time: with no SDK configured they are no-ops.
:func:`configure_tracing` points genesis_ps at a specific ``TracerProvider`` (tests pass one with an
in-memory exporter) without touching the global one. :func:`start_run` opens a graph run's span and
returns its ids as plain JSON, so every node span — in this process or after a resume — is its child.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "block_progress",
    "configure_tracing",
    "current_layer",
    "end_run",
    "layer_scope",
    "set_attributes",
    "span",
    "start_run",
]

_LAYER: contextvars.ContextVar[str] = contextvars.ContextVar("genesis_ps_layer", default="direct")
_PROVIDER: list[Any] = [None]


def configure_tracing(provider: Any | None) -> None:
    """Use ``provider`` (an OpenTelemetry ``TracerProvider``) for genesis_ps spans; None = the global one."""
    _PROVIDER[0] = provider


def _tracer() -> Any:
    from opentelemetry import trace

    provider = _PROVIDER[0]
    if provider is not None:
        return provider.get_tracer("genesis_ps")
    return trace.get_tracer("genesis_ps")


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (bool, int, float, str)) else str(v)
    return out


def _context(parent: Mapping[str, Any] | None) -> Any:
    """An OpenTelemetry context whose current span is the one ``parent`` names (its hex ids), or None."""
    if not parent or not parent.get("trace_id") or not parent.get("span_id"):
        return None
    from opentelemetry import trace

    sc = trace.SpanContext(trace_id=int(parent["trace_id"], 16), span_id=int(parent["span_id"], 16),
                           is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))  # fmt: skip
    return trace.set_span_in_context(trace.NonRecordingSpan(sc))


@contextlib.contextmanager
def span(name: str, parent: Mapping[str, Any] | None = None, /, **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` (attributes with value None are left out), a child of the current span or
    of ``parent`` (a run's trace record). Exceptions are recorded on the span and re-raised."""
    kw: dict[str, Any] = {"attributes": _clean(attributes)}
    ctx = _context(parent)
    if ctx is not None:
        kw["context"] = ctx
    with _tracer().start_as_current_span(name, **kw) as sp:
        yield sp


_OPEN_RUNS: dict[str, Any] = {}
_MAX_OPEN_RUNS = 256


def start_run(name: str = "genesis_ps.run", **attributes: Any) -> dict[str, Any]:
    """Open the span of one graph run (a child of the current span, if any) and return its trace record —
    plain JSON (hex ids, ``request_id``, ``thread_id``) to keep in the graph state, so every node span,
    in this process or after a resume, becomes its child: one trace per run. :func:`end_run` ends it."""
    sp = _tracer().start_span(name, attributes=_clean(attributes))
    run = {k: attributes.get(k) for k in ("request_id", "thread_id")}
    sc = sp.get_span_context()
    if not sc.is_valid:  # no SDK configured: nothing to parent on
        sp.end()
        return run
    run |= {"trace_id": format(sc.trace_id, "032x"), "span_id": format(sc.span_id, "016x")}
    while len(_OPEN_RUNS) >= _MAX_OPEN_RUNS:  # runs that never finished (interrupted and abandoned)
        _OPEN_RUNS.pop(next(iter(_OPEN_RUNS))).end()
    _OPEN_RUNS[str(run["span_id"])] = sp
    return run


def end_run(run: Mapping[str, Any] | None, **attributes: Any) -> None:
    """End the run span :func:`start_run` opened (a no-op when it was opened in another process)."""
    sp = _OPEN_RUNS.pop(str((run or {}).get("span_id")), None)
    if sp is not None:
        set_attributes(sp, **attributes)
        sp.end()


def set_attributes(sp: Any, **attributes: Any) -> None:
    """Set attributes on a span (None values left out); a no-op span ignores them."""
    if sp is not None and sp.is_recording():
        sp.set_attributes(_clean(attributes))


def block_progress(sp: Any, inner: Callable[[int, int], None] | None) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback that also records each finished block as a child span of
    ``sp`` (start = end of the previous block). Returns ``inner`` unchanged when ``sp`` is not recording."""
    if sp is None or not sp.is_recording():
        return inner
    from opentelemetry import trace

    tracer, ctx = _tracer(), trace.set_span_in_context(sp)
    last = [time.time_ns()]

    def progress(done: int, total: int) -> None:
        now = time.time_ns()
        child = tracer.start_span(
            "genesis_ps.power_sample.block",
            context=ctx,
            start_time=last[0],
            attributes={"block": done, "blocks": total},
        )
        child.end(end_time=now)
        last[0] = now
        if inner is not None:
            inner(done, total)

    return progress


# ------------------------------------------------------------------------------------------------ layers


def current_layer() -> str:
    return _LAYER.get()


@contextlib.contextmanager
def layer_scope(layer: str) -> Iterator[None]:
    """Attribute generations made inside this block (and tasks it starts) to ``layer``."""
    token = _LAYER.set(layer)
    try:
        yield
    finally:
        _LAYER.reset(token)
