"""Fixtures for the provider tests: fake servers behind the official SDK clients."""

from __future__ import annotations

import pytest
from provider_fakes import FakeServer, Recorder


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def server_for():
    def make(kind: str) -> FakeServer:
        from provider_fakes import SERVER_KIND

        return FakeServer(SERVER_KIND[kind])

    return make
