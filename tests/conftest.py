"""Shared fixtures for the core tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import uvloop

from actionrt.plugins import Plugins

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# The tests that go over loopback run on both event loops (issue: actionrt must not depend on
# the loop's concrete classes), so a regression on either fails CI.
EVERY_LOOP: Mapping[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
ON_EVERY_LOOP = {
    "test_http.py",
    "test_runtime_limits.py",
    "test_limits_e2e.py",
    "test_auth_runtime.py",
    "test_auth_mtls.py",
    "test_http_hostile.py",
    "test_http_pool.py",
}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both loops for the end-to-end tests and the loopback runtime tests; asyncio elsewhere."""
    path = Path(str(item.path))
    if path.name in ("test_service_schemathesis.py", "test_service_generated_client.py"):
        # slow: once, on the loop `serve` runs on
        return {"uvloop": uvloop.new_event_loop}
    if "e2e" in path.parts or path.name in ON_EVERY_LOOP:
        return EVERY_LOOP
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture(scope="session")
def plugins() -> Plugins:
    """The built-in plugins only (no entry points), shared: Plugins holds no per-call state."""
    return Plugins.load(entry_points=False)
