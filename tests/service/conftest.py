"""Fixtures of the service tests: a service over a fresh store with its ASGI client, and a
loopback endpoint that records what the actions sent it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from service_support import Endpoint, Service, client_for, make_app, start_endpoint


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    server, runner = await start_endpoint()
    yield server
    await runner.cleanup()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    app = make_app(tmp_path)
    async with client_for(app) as client:
        yield Service(app, client, tmp_path / "store.db")
    await app.state.service.calls.aclose()
    app.state.service.store.close()
