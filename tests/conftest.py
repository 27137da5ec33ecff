"""Shared fixture: an in-memory span exporter with fresh metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_ps import observability as obs


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing into memory, and metrics reset before and after the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    obs.configure_tracing(provider)
    obs.reset_metrics()
    yield exporter
    obs.configure_tracing(None)
    obs.reset_metrics()

