"""`attempts` counts requests written to the endpoint and `sent` says whether any was: through
`MockTransport`, the runtime's real seam, with no network but a token endpoint that hangs."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from actionrt.guard import DestinationPolicy
from actionrt.http import ConnectError, Http1Transport, HttpRequest, HttpResponse, MockTransport, NetworkError
from actionrt.results import NOT_SENT
from actionrt.retry import Backoff
from actionrt.runtime import Runtime

API = "https://api.example.com"


async def public_dns(host: str, port: int) -> list[tuple[str, int]]:
    return [("93.184.216.34", port)]


def runtime_over(folder: Path, transport: MockTransport, **fields: Any) -> Runtime:
    document: dict[str, Any] = {
        "name": "notify",
        "endpoint": {"url": API + "/v1/notify", "method": "POST"},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        "timeout": 1,
        **fields,
    }
    (folder / "notify.json").write_text(json.dumps(document))
    return Runtime.from_path(
        folder,
        plugins=(),
        transport=transport,
        policy=DestinationPolicy(True, resolver=public_dns),
        backoff=Backoff(base=0.001, cap=0.002),
    )


async def test_refused_connections_are_not_attempts(tmp_path: Path) -> None:
    answers = iter([ConnectError("refused"), ConnectError("refused"), None])

    def endpoint(request: HttpRequest) -> HttpResponse:
        failure = next(answers)
        if failure is not None:
            raise failure
        return HttpResponse(200, {}, b"{}", request.url)

    async with runtime_over(tmp_path, MockTransport(endpoint)) as runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert result.ok and result.attempts == 1 and result.sent
    assert (result.origin_error_class, result.origin_error_code) == ("error", "connect")


async def test_a_broken_connection_after_writing_is_an_attempt(tmp_path: Path) -> None:
    def endpoint(request: HttpRequest) -> HttpResponse:
        raise NetworkError("reset")

    async with runtime_over(tmp_path, MockTransport(endpoint), retry={"count": 1}) as runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert (result.error_code, result.attempts, result.sent) == ("network", 2, True)
    assert result.as_json()["sent"] is True and result.as_event()["sent"] is True


async def test_a_call_still_waiting_for_its_token_at_the_deadline_was_not_sent(tmp_path: Path) -> None:
    token_url = "https://auth.example.com/token"
    never = asyncio.Event()

    async def endpoints(request: HttpRequest) -> HttpResponse:
        if request.url == token_url:  # token calls go through the same transport: this one hangs
            await never.wait()
        return HttpResponse(200, {}, b"{}", request.url)

    transport = MockTransport(endpoints)
    authentication = {
        "type": "customAuthorization",
        "endpoint": token_url,
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
        "authorizationType": "bearer",
    }
    async with runtime_over(tmp_path, transport, authentication=authentication) as runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert (result.status, result.error_code, result.attempts, result.sent) == (
        "timedout",
        NOT_SENT,
        0,
        False,
    )
    assert result.error == "nothing sent within 1 s: no token yet"
    assert result.as_event()["sent"] is False
    assert [request.url for request in transport.requests] == [token_url]  # never the action's


async def test_a_failed_lookup_is_retried_and_reported_as_such(tmp_path: Path) -> None:
    lookups: list[str] = []

    async def nowhere(host: str, port: int) -> list[tuple[str, int]]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    policy = DestinationPolicy(True, resolver=nowhere)
    document = {
        "name": "notify",
        "endpoint": {"url": API + "/v1/notify", "method": "POST"},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
    }
    (tmp_path / "notify.json").write_text(json.dumps(document))
    runtime = Runtime.from_path(
        tmp_path,
        plugins=(),
        policy=policy,
        transport=Http1Transport(policy=policy),
        backoff=Backoff(base=0.001, cap=0.002),
    )
    async with runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert (result.status, result.error_code, result.attempts, result.sent) == (
        "internalError",
        "lookupFailed",
        0,
        False,
    )
    assert lookups == ["api.example.com"] * 4  # the first try and three retries
