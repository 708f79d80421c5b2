"""`actionrt auth-check NAME PATH`: one line, secrets masked, exit 0 only on success."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from auth_server import TokenServer, token_server
from click.testing import CliRunner, Result

from actionrt.cli import app

__all__ = ["token_server"]  # fixture, used by parameter name

SENTINEL = "Zq-s3ntinel-CLI"


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "API_PASSWORD,EPS_SECRET,NOPE")


def write_action(directory: Path, authentication: dict[str, Any], name: str = "crmUpdate") -> Path:
    action = {
        "name": name,
        "endpoint": {"url": "https://api.example.com/v1/contacts", "method": "POST"},
        "authentication": authentication,
        "request": {"sample": {"email": "ada@example.com"}},
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(action))
    return path


async def run(*args: str) -> Result:
    # The CLI runs its own event loop: keep it off this test's loop (which serves the tokens).
    return await asyncio.to_thread(CliRunner().invoke, app, ["auth-check", *args])


def password_grant(server: TokenServer) -> dict[str, Any]:
    return {
        "type": "customAuthorization",
        "endpoint": f"{server.base_url}/oauth2/token",
        "method": "POST",
        "headers": {"Authorization": "Basic EncodeBase64(my-client-id:{{ secrets.EPS_SECRET }})"},
        "body": {
            "bodyType": "form",
            "bodyParams": {"grant_type": "password", "username": "user", "password": "pass"},
        },
        "tokenInResponse": "json://access_token",
    }


async def test_token_endpoint_success_and_failure(
    token_server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPS_SECRET", "my-client-secret")
    path = write_action(tmp_path, password_grant(token_server))
    ok = await run("crmUpdate", str(path), "--allow-private-network")
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("\n") == 1
    assert ok.output.startswith(
        f"crmUpdate: customAuthorization: ok: token endpoint {token_server.base_url}/oauth2/token"
    )
    assert "pw-1" not in ok.output and "my-client-secret" not in ok.output
    assert token_server.token_requests == 1 and token_server.resource_calls == 0

    monkeypatch.setenv("EPS_SECRET", SENTINEL)
    failed = await run("crmUpdate", str(path), "--allow-private-network")
    assert failed.exit_code == 1
    assert failed.output == (
        f"crmUpdate: customAuthorization: failed: token endpoint {token_server.base_url}"
        "/oauth2/token answered 401 (invalid_client)\n"
    )


async def test_loopback_token_endpoint_refused_without_the_flag(
    token_server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPS_SECRET", "my-client-secret")
    monkeypatch.delenv("ACTIONRT_ALLOW_PRIVATE_NETWORK", raising=False)
    path = write_action(tmp_path, password_grant(token_server))
    result = await run("crmUpdate", str(path))
    assert result.exit_code == 1
    assert "refused: IP address host '127.0.0.1' is not allowed" in result.output
    assert token_server.token_requests == 0


async def test_static_schemes_show_what_would_be_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_PASSWORD", SENTINEL)
    path = write_action(
        tmp_path, {"type": "basic", "username": "ada", "password": "{{ secrets.API_PASSWORD }}"}
    )
    result = await run("crmUpdate", str(path))
    assert (result.exit_code, result.output) == (
        0,
        "crmUpdate: basic: ok: would send Authorization: Basic *** (username ada)\n",
    )
    path = write_action(
        tmp_path,
        {"type": "apiKey", "name": "appid", "value": SENTINEL, "location": "query"},
        name="weather",
    )
    result = await run("weather", str(path))
    assert (result.exit_code, result.output) == (
        0,
        "weather: apiKey: ok: would send query parameter appid=***\n",
    )


async def test_missing_secrets_and_unknown_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    path = write_action(tmp_path, {"type": "basic", "username": "ada", "password": "{{ secrets.NOPE }}"})
    result = await run("crmUpdate", str(path))
    assert (result.exit_code, result.output) == (
        1,
        "crmUpdate: basic: failed: secrets not set: NOPE (authentication.password)\n",
    )
    result = await run("other", str(path))
    assert result.exit_code == 1
    assert "no such action" in result.output
