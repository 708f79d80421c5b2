"""Shared fixtures for the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrt.plugins import Plugins

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def plugins() -> Plugins:
    """The built-in plugins only (no entry points), shared: Plugins holds no per-call state."""
    return Plugins.load(entry_points=False)
