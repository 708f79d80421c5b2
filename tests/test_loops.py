"""The loop actionrt's own processes pick: uvloop when installed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from cryptography.fernet import Fernet

from actionrt.loops import best_loop_factory, best_loop_name, install_best_loop


@pytest.fixture
def restored_policy() -> Iterator[None]:
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


def test_uvloop_is_the_best_loop_when_installed() -> None:
    assert best_loop_name() == "uvloop"
    loop = best_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_install_best_loop_makes_new_loops_uvloop(restored_policy: None) -> None:
    assert install_best_loop() == "uvloop"
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_serve_runs_uvicorn_on_the_best_loop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn
    from click.testing import CliRunner

    from actionrt.cli import app

    seen: dict[str, object] = {}

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        seen["loop"] = server.config.loop

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTIONRT_SECRET_KEY", Fernet.generate_key().decode())
    result = CliRunner().invoke(app, ["serve", "--no-examples", "--store", "store.db", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert seen["loop"] == "uvloop"
