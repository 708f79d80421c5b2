"""`actionrt serve`: loopback by default, refuses other addresses without a token and a key."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from cryptography.fernet import Fernet
from service_support import EXAMPLES

from actionrt import loops
from actionrt.cli import app, serve_commands


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Captures the address `serve` binds and what it hands to uvicorn instead of serving."""
    seen: dict[str, Any] = {}
    real_bind = serve_commands.bind

    def bind(host: str, port: int) -> socket.socket:
        seen.update(host=host, port=port)
        return real_bind("127.0.0.1", 0)  # nothing listens on the real address

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen["app"] = server.config.app
        seen["threshold"] = gc.get_threshold()
        seen["frozen"] = gc.get_freeze_count()
        for listener in sockets:
            listener.close()

    monkeypatch.setattr(serve_commands, "bind", bind)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.delenv("ACTIONRT_API_TOKEN", raising=False)
    monkeypatch.delenv("ACTIONRT_SECRET_KEY", raising=False)
    return seen


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """`serve` tunes this process's garbage collector: the tests' process gets it back."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_serve_tunes_the_collector_before_serving(tmp_path: Path, started: dict[str, Any]) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "store.db"), "--no-examples"])
    assert result.exit_code == 0, result.output
    # Collected less often, and what serving started with (the app, its imports) is never
    # walked again by a collection.
    assert started["threshold"] == (loops.YOUNG_THRESHOLD, 10, 10)
    assert started["frozen"] > 10_000


def test_serve_starts_on_loopback_8700_with_the_examples(tmp_path: Path, started: dict[str, Any]) -> None:
    store = tmp_path / "store.db"
    result = CliRunner().invoke(app, ["serve", "--store", str(store), "--examples", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert (started["host"], started["port"]) == ("127.0.0.1", 8700)
    state = started["app"].state.service
    assert "loyaltyUpdate" in state.catalog.registry.actions
    assert (tmp_path / "secret.key").exists()  # the development key, beside the store


def test_serve_beyond_loopback_needs_a_token_and_a_key(
    tmp_path: Path, started: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ["--store", str(tmp_path / "store.db"), "--no-examples"]
    runner = CliRunner()
    no_token = runner.invoke(app, ["serve", "--host", "0.0.0.0", *store])
    assert no_token.exit_code == 2 and "ACTIONRT_API_TOKEN" in no_token.output
    monkeypatch.setenv("ACTIONRT_API_TOKEN", "tok")
    no_key = runner.invoke(app, ["serve", "--host", "0.0.0.0", *store])
    assert no_key.exit_code == 2 and "ACTIONRT_SECRET_KEY" in no_key.output
    monkeypatch.setenv("ACTIONRT_SECRET_KEY", Fernet.generate_key().decode())
    served = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9000", *store])
    assert served.exit_code == 0, served.output
    assert (started["host"], started["port"]) == ("0.0.0.0", 9000)
    assert not (tmp_path / "secret.key").exists()


def test_a_host_name_that_only_starts_with_127_is_not_loopback(
    tmp_path: Path, started: dict[str, Any]
) -> None:
    # `127.example.com` may resolve anywhere: serving on it is serving beyond loopback.
    store = ["--store", str(tmp_path / "store.db"), "--no-examples"]
    result = CliRunner().invoke(app, ["serve", "--host", "127.example.com", *store])
    assert result.exit_code == 2
    assert "ACTIONRT_API_TOKEN" in result.output
    assert "app" not in started


def test_serve_lets_actions_read_the_environment_variables_named_by_its_options(
    tmp_path: Path, started: dict[str, Any]
) -> None:
    store = ["--store", str(tmp_path / "store.db"), "--no-examples"]
    runner = CliRunner()
    served = runner.invoke(app, ["serve", *store, "--env-secret", "CRM_TOKEN", "--env-secret-prefix", "SMS_"])
    assert served.exit_code == 0, served.output
    environment = started["app"].state.service.catalog.plugins.secret_providers["env"]
    assert environment.refusal("CRM_TOKEN") is None and environment.refusal("SMS_PASSWORD") is None
    assert environment.refusal("HOME") is not None
    refused = runner.invoke(app, ["serve", *store, "--env-secret", "ACTIONRT_SECRET_KEY"])
    assert refused.exit_code == 2
    assert "'ACTIONRT_SECRET_KEY' would expose ACTIONRT_* variables" in refused.output
