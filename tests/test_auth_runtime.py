"""Authentication through `Runtime.invoke`, against the loopback token server: the token
injected, a 401 refreshing it once, a failing token endpoint failing the call with nothing
sent, and one token request for many concurrent invocations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from auth_server import TokenServer, token_server

from actionrt.runtime import Runtime

__all__ = ["token_server"]  # fixture, used by parameter name


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "EPS")


def write_action(directory: Path, server: TokenServer) -> Path:
    action = {
        "name": "loyaltyUpdate",
        "endpoint": {"url": f"{server.base_url}/resource", "method": "POST"},
        "authentication": {
            "type": "customAuthorization",
            "endpoint": f"{server.base_url}/oauth2/token",
            "method": "POST",
            "headers": {"Authorization": "Basic EncodeBase64(my-client-id:{{ secrets.EPS }})"},
            "body": {
                "bodyType": "form",
                "bodyParams": {"grant_type": "password", "username": "user", "password": "pass"},
            },
            "tokenInResponse": "json://access_token",
            "cacheDuration": {"expiryInResponse": "json://expires_in", "timeUnit": "seconds"},
        },
        "request": {"sample": {"email": "ada@example.com"}, "variables": {"email": {"label": "E"}}},
        "retry": {"count": 0},
    }
    path = directory / "loyalty.json"
    path.write_text(json.dumps(action))
    return path


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPS", "my-client-secret")


async def test_token_injected_and_refreshed_once_after_a_401(
    token_server: TokenServer, tmp_path: Path
) -> None:
    async with Runtime.from_path(write_action(tmp_path, token_server), allow_private_network=True) as runtime:
        first = await runtime.invoke("loyaltyUpdate", {"email": "ada@example.com"})
        assert (first.status, first.response) == ("http_200", {"ok": True, "token": "pw-1"})
        token_server.revoked.add("pw-1")
        second = await runtime.invoke("loyaltyUpdate", {"email": "ada@example.com"})
        assert second.status == "http_200"
        assert second.response["token"] == "pw-2"
        assert second.attempts == 2  # the 401, then one more try with the fresh token
        assert token_server.token_requests == 2


async def test_failing_token_endpoint_fails_the_call_and_sends_nothing(
    token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.fail_status = 503
    async with Runtime.from_path(write_action(tmp_path, token_server), allow_private_network=True) as runtime:
        results = [await runtime.invoke("loyaltyUpdate", {"email": "ada@example.com"}) for _ in range(5)]
    assert {r.status for r in results} == {"internalError"}
    assert results[0].error is not None and "answered 503" in results[0].error
    assert token_server.resource_calls == 0
    assert token_server.token_requests == 3  # one refresh tried 3 times (503 is transient), then backed off


async def test_concurrent_invocations_share_one_token_request(
    token_server: TokenServer, tmp_path: Path
) -> None:
    async with Runtime.from_path(write_action(tmp_path, token_server), allow_private_network=True) as runtime:
        results = await asyncio.gather(
            *(runtime.invoke("loyaltyUpdate", {"email": "ada@example.com"}) for _ in range(200))
        )
    assert {r.status for r in results} == {"http_200"}
    assert token_server.token_requests == 1
