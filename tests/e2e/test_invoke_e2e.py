"""End to end: `Runtime.invoke` through the real aiohttp transport against loopback servers."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from aiohttp import web
from conftest import (
    FAST_BACKOFF,
    PARAMS,
    RawServer,
    ScriptedServer,
    action_file,
    read_request,
    reply,
    runtime_for,
)

from actionrt.events import JsonLinesSink
from actionrt.guard import DestinationPolicy
from actionrt.retry import Backoff


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "API_KEY,TENANT_SECRET")


async def test_success_sends_the_typed_payload_and_parses_the_answer(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/v1/loyalty", reply(200, {"customerID": "xY12hye", "status": "gold"}))
    action_file(tmp_path, server.url + "/v1/loyalty")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke(
            "loyaltyUpdate", {"customer.email": "ada@example.com", "customer.points": "12"}
        )
    assert result.status == "http_200" and result.ok and result.attempts == 1
    assert result.response == {"customerID": "xY12hye", "status": "gold"}
    assert result.error is None and result.error_class is None
    (seen,) = server.requests
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.json() == {"customer": {"email": "ada@example.com", "points": 12}, "source": "j"}
    assert result.as_journey_fields() == {
        "customerID": "xY12hye",
        "status": "gold",
        "jo_status_code": "http_200",
        "errorResponse": None,
    }


@pytest.mark.parametrize(
    ("status", "policy", "attempts"),
    [
        (400, "default", 1),
        (401, "default", 1),
        (403, "default", 1),
        (404, "default", 1),
        (409, "default", 1),
        (408, "default", 4),
        (425, "default", 4),
        (429, "default", 4),
        (500, "default", 4),
        (501, "default", 1),
        (502, "default", 4),
        (503, "default", 4),
        (400, "reference", 4),
        (404, "reference", 1),
        (501, "reference", 4),
    ],
)
async def test_each_status_class_is_reported_and_retried_by_its_policy(
    server: ScriptedServer, tmp_path: Path, status: int, policy: str, attempts: int
) -> None:
    server.on("/x", reply(status, {"errorResponse": "nope"}))
    action_file(tmp_path, server.url + "/x", retry={"count": 3, "policy": policy})
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == f"http_{status}" and not result.ok
    assert result.http_status == status
    assert (result.error_class, result.error_code) == ("http", str(status))
    assert result.error_response == {"errorResponse": "nope"}
    assert result.attempts == attempts == len(server.requests)
    assert result.as_journey_fields()["errorResponse"] == {"errorResponse": "nope"}


class Waits:
    """The runtime's waits between attempts, recorded instead of slept."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


async def test_retries_are_counted_and_spaced_by_the_backoff(server: ScriptedServer, tmp_path: Path) -> None:
    backoff = Backoff(base=0.04, factor=2.0, cap=1.0, jitter=0.5)
    server.on("/x", reply(503), reply(503), reply(200, {"ok": True}))
    action_file(tmp_path, server.url + "/x", retry={"count": 2})
    waits = Waits()
    async with runtime_for(tmp_path, backoff=backoff, sleep=waits) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok and result.attempts == 3
    assert (result.origin_error_class, result.origin_error_code) == ("http", "503")
    first, second = waits.seconds
    assert backoff.bounds(1)[0] <= first <= backoff.bounds(1)[1]
    assert backoff.bounds(2)[0] <= second <= backoff.bounds(2)[1]


async def test_retry_count_zero_means_one_attempt(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(503))
    action_file(tmp_path, server.url + "/x", retry={"count": 0})
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "http_503" and result.attempts == 1


async def test_retry_after_in_seconds_is_honoured(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(429, headers={"Retry-After": "1"}), reply(200, {"ok": True}))
    action_file(tmp_path, server.url + "/x")
    waits = Waits()
    async with runtime_for(tmp_path, sleep=waits) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok and result.attempts == 2
    assert waits.seconds == [1.0]  # not the millisecond backoff


async def test_retry_after_past_the_deadline_stops_and_reports(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/x", reply(503, {"e": 1}, headers={"Retry-After": "120"}))
    action_file(tmp_path, server.url + "/x", timeout=5)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "http_503" and result.attempts == 1
    assert result.error is not None and "Retry-After asks 120 s, past the deadline" in result.error
    # (had it waited, the 5 s deadline would have ended the call as timedout)


async def test_a_timeout_in_the_middle_of_retries_keeps_the_origin_error(
    server: ScriptedServer, tmp_path: Path
) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await server.release.wait()
        return web.json_response({})

    server.on("/x", reply(500), hang)
    action_file(tmp_path, server.url + "/x", timeout=1)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "timedout" and not result.ok
    assert (result.error_class, result.error_code) == ("timeout", "timedout")
    assert (result.origin_error_class, result.origin_error_code) == ("http", "500")
    assert result.attempts == 2
    assert result.error == "no answer within 1 s (attempt 2 cancelled)"


async def test_the_timeout_argument_overrides_the_action_timeout(
    server: ScriptedServer, tmp_path: Path
) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await server.release.wait()
        return web.json_response({})

    server.on("/x", hang)
    action_file(tmp_path, server.url + "/x", timeout=30)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS, timeout=1)
        refused = await runtime.invoke("loyaltyUpdate", PARAMS, timeout=31)
    assert result.status == "timedout" and result.attempts == 1
    assert result.error == "no answer within 1 s (attempt 1 cancelled)"  # not the action's 30 s
    assert refused.status == "internalError" and "timeout" in (refused.error or "")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused_is_retried_then_an_internal_error(tmp_path: Path) -> None:
    action_file(tmp_path, f"http://127.0.0.1:{_closed_port()}/x")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError" and result.http_status is None
    assert (result.error_class, result.error_code) == ("error", "connect")
    assert result.attempts == 0 and not result.sent  # four connections refused: nothing written
    assert "127.0.0.1" in (result.error or "")


async def test_a_reset_connection_is_a_network_error_and_retried(
    raw_server: RawServer, tmp_path: Path
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST instead of FIN

    raw_server.handler = reset
    action_file(tmp_path, raw_server.url + "/x", retry={"count": 2})
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError"
    assert (result.error_class, result.error_code) == ("error", "network")
    assert result.attempts == 3 == raw_server.connections


async def test_a_slow_body_times_out(raw_server: RawServer, tmp_path: Path) -> None:
    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":')
        await writer.drain()
        await raw_server.release.wait()

    raw_server.handler = dribble
    action_file(tmp_path, raw_server.url + "/x", timeout=1)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "timedout" and result.attempts == 1


async def test_a_body_closed_early_is_a_network_error(raw_server: RawServer, tmp_path: Path) -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":')
        await writer.drain()

    raw_server.handler = truncated
    action_file(tmp_path, raw_server.url + "/x", retry={"count": 1})
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert (result.status, result.error_code, result.attempts) == ("internalError", "network", 2)


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_body_is_an_internal_error(
    server: ScriptedServer, tmp_path: Path, chunked: bool
) -> None:
    big = b"[" + b"1," * 3000 + b"1]"

    async def large(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 1000):
            await response.write(big[start : start + 1000])
        await response.write_eof()
        return response

    server.on("/x", large)
    action_file(tmp_path, server.url + "/x")
    async with runtime_for(tmp_path, max_body=4096) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError" and result.error_code == "bodyTooLarge"
    assert result.attempts == 1  # not retried: the answer would be as large again


async def test_a_non_json_2xx_body_is_still_a_success_with_a_note(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/x", reply(200, text="accepted, thanks"))
    action_file(tmp_path, server.url + "/x")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "http_200" and result.ok
    assert result.response is None
    assert result.error is not None and "not JSON" in result.error


async def test_a_redirect_is_followed_with_its_method_and_body(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/old", reply(307, headers={"Location": "/new"}))
    server.on("/new", reply(200, {"moved": True}))
    action_file(tmp_path, server.url + "/old")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok and result.response == {"moved": True}
    old, new = server.requests
    assert new.method == "POST" and new.body == old.body


@pytest.mark.parametrize("target", ["http://metadata.evil.test/latest", "file:///etc/passwd"])
async def test_a_redirect_to_a_refused_destination_is_not_followed(
    server: ScriptedServer, tmp_path: Path, target: str
) -> None:
    server.on("/x", reply(302, headers={"Location": target}))
    action_file(tmp_path, server.url + "/x")
    policy = DestinationPolicy(True, deny_domains=["evil.test"])
    async with runtime_for(tmp_path, policy=policy) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError"
    assert result.error_code == "destinationRefused"
    assert result.attempts == 1 and len(server.requests) == 1


_API_KEY = "k-3f9a"
_TENANT_SECRET = "t-77c1"


@pytest.mark.parametrize(
    ("authentication", "credential"),
    [
        ({"type": "apiKey", "name": "x-api-key", "value": "{{ secrets.API_KEY }}"}, "x-api-key"),
        (
            {"type": "apiKey", "name": "appid", "value": "{{ secrets.API_KEY }}", "location": "query"},
            "?appid",
        ),
        ({"type": "bearer", "token": "{{ secrets.API_KEY }}"}, "authorization"),
        ("tokenTarget", "x-auth-token"),
    ],
)
async def test_a_redirect_to_another_origin_carries_no_credential(
    server: ScriptedServer,
    other_server: ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    authentication: dict[str, object] | str,
    credential: str,
) -> None:
    monkeypatch.setenv("API_KEY", _API_KEY)
    monkeypatch.setenv("TENANT_SECRET", _TENANT_SECRET)
    if authentication == "tokenTarget":
        server.on("/token", reply(200, {"access_token": _API_KEY, "expires_in": 3600}))
        authentication = {
            **_token_auth(server.url),
            "authorizationType": "header",
            "tokenTarget": "x-auth-token",
        }
    server.on("/x", reply(307, headers={"Location": other_server.url + "/landed"}))
    other_server.on("/landed", reply(200, {"landed": True}))
    endpoint = {
        "url": server.url + "/x",
        "method": "POST",
        "headers": [
            {"name": "x-tenant-secret", "value": "{{ secrets.TENANT_SECRET }}"},
            {"name": "accept-language", "value": "en"},
        ],
    }
    action_file(tmp_path, server.url + "/x", endpoint=endpoint, authentication=authentication)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok and result.response == {"landed": True}
    (first,) = server.seen("/x")
    if credential.startswith("?"):
        assert first.query[credential[1:]] == _API_KEY
    else:
        assert _API_KEY in first.headers[credential]
    assert first.headers["x-tenant-secret"] == _TENANT_SECRET
    (landed,) = other_server.requests
    assert landed.query == {}
    assert credential not in landed.headers and "x-tenant-secret" not in landed.headers
    assert not [v for v in landed.headers.values() if _API_KEY in v or _TENANT_SECRET in v]
    assert landed.headers["accept-language"] == "en"
    assert landed.json() == first.json()  # 307: the same payload, to the new origin


async def test_a_same_origin_redirect_keeps_the_credentials(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", _API_KEY)
    server.on("/x", reply(307, headers={"Location": "/landed"}))
    server.on("/landed", reply(200, {"landed": True}))
    authentication = {"type": "apiKey", "name": "x-api-key", "value": "{{ secrets.API_KEY }}"}
    action_file(tmp_path, server.url + "/x", authentication=authentication)
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok
    (landed,) = server.seen("/landed")
    assert landed.headers["x-api-key"] == _API_KEY


class _Vault:
    """A secret provider answering one fixed value: secrets can hold what env vars can't (NUL)."""

    name = "vault"
    checkable = True

    def __init__(self, value: str) -> None:
        self.value = value

    def get(self, name: str) -> str | None:
        return self.value


@pytest.mark.parametrize("secret", ["k\x00evil", "k\x01", "k\x1b[0m", "k\x7f", "k\r\nX-Injected: 1"])
async def test_a_control_character_from_a_secret_is_refused_and_nothing_is_sent(
    server: ScriptedServer, tmp_path: Path, secret: str
) -> None:
    server.on("/x", reply(200))
    endpoint = {
        "url": server.url + "/x",
        "method": "POST",
        "headers": [{"name": "x-tenant-key", "value": "{{ secrets.vault:TENANT_KEY }}"}],
    }
    action_file(tmp_path, server.url + "/x", endpoint=endpoint)
    async with runtime_for(tmp_path, secrets={"vault": _Vault(secret)}) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError" and not result.ok
    assert result.error_code == "invalidRequest" and result.attempts == 0 and not result.sent
    assert result.error is not None and secret not in result.error and "x-tenant-key" in result.error
    assert server.requests == []


async def test_a_tab_from_a_secret_is_sent(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(200))
    endpoint = {
        "url": server.url + "/x",
        "method": "POST",
        "headers": [{"name": "x-tenant-key", "value": "{{ secrets.vault:TENANT_KEY }}"}],
    }
    action_file(tmp_path, server.url + "/x", endpoint=endpoint)
    async with runtime_for(tmp_path, secrets={"vault": _Vault("a\tb")}) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.ok
    (seen,) = server.requests
    assert seen.headers["x-tenant-key"] == "a\tb"


async def test_a_redirect_loop_stops_after_five(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(302, headers={"Location": "/x"}))
    action_file(tmp_path, server.url + "/x")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.error_code == "tooManyRedirects"
    assert len(server.requests) == 6  # the call and five redirects


async def test_the_idempotency_key_is_stable_across_retries_and_new_per_call(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/x", reply(503), reply(503), reply(200), reply(200))
    action_file(tmp_path, server.url + "/x", idempotencyKey="Idempotency-Key")
    async with runtime_for(tmp_path) as runtime:
        first = await runtime.invoke("loyaltyUpdate", PARAMS)
        second = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert first.attempts == 3 and second.attempts == 1
    keys = [r.headers["idempotency-key"] for r in server.requests]
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert len(keys[0]) >= 32


async def test_500_concurrent_calls_are_all_answered(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(200, {"ok": True}))
    action_file(tmp_path, server.url + "/x")
    async with runtime_for(tmp_path) as runtime:
        results = await asyncio.gather(
            *(
                runtime.invoke("loyaltyUpdate", {"customer.email": f"u{i}@x.y", "customer.points": i})
                for i in range(500)
            )
        )
    assert all(r.ok and r.attempts == 1 for r in results)
    assert len(server.requests) == 500
    assert sorted(r.json()["customer"]["points"] for r in server.requests) == list(range(500))


async def test_bad_input_sends_nothing(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(200))
    action_file(tmp_path, server.url + "/x")
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke(
            "loyaltyUpdate", {"customer.email": "a@b.c", "customer.points": "twelve"}
        )
    assert result.status == "internalError" and result.attempts == 0
    assert result.error is not None and result.error.startswith("customer.points:")
    assert server.requests == []


async def test_capping_fails_at_once_without_sending(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/x", reply(200))
    action_file(tmp_path, server.url + "/x")
    rule = {
        "name": "two per minute",
        "url": server.url + "/x",
        "methods": ["POST"],
        "services": {"action": {"rating": {"maxCallsCount": 2, "periodInMs": 60_000}}},
    }
    async with runtime_for(tmp_path, capping=[rule]) as runtime:
        results = [await runtime.invoke("loyaltyUpdate", PARAMS) for _ in range(3)]
    assert [r.status for r in results] == ["http_200", "http_200", "capped"]
    capped = results[2]
    assert (capped.error_class, capped.error_code, capped.attempts) == ("capping", "capped", 0)
    assert len(server.requests) == 2


def _token_auth(url: str) -> dict[str, object]:
    return {
        "type": "customAuthorization",
        "endpoint": url + "/token",
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
        "cacheDuration": {"expiryInResponse": "json://expires_in", "timeUnit": "seconds"},
    }


async def test_a_cached_token_is_sent_and_a_401_refreshes_it_once(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on(
        "/token",
        reply(200, {"access_token": "t1", "expires_in": 3600}),
        reply(200, {"access_token": "t2", "expires_in": 3600}),
    )
    server.on("/x", reply(200), reply(401), reply(200), reply(200))
    action_file(tmp_path, server.url + "/x", authentication=_token_auth(server.url))
    async with runtime_for(tmp_path) as runtime:
        first = await runtime.invoke("loyaltyUpdate", PARAMS)
        refreshed = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert first.ok and first.attempts == 1
    assert refreshed.ok and refreshed.attempts == 2
    assert (refreshed.origin_error_class, refreshed.origin_error_code) == ("http", "401")
    sent = [r.headers["authorization"] for r in server.seen("/x")]
    assert sent == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert len(server.seen("/token")) == 2


async def test_a_second_401_is_reported(server: ScriptedServer, tmp_path: Path) -> None:
    server.on("/token", reply(200, {"access_token": "t", "expires_in": 3600}))
    server.on("/x", reply(401, {"error": "denied"}))
    action_file(tmp_path, server.url + "/x", authentication=_token_auth(server.url))
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "http_401" and result.attempts == 2
    assert result.error_response == {"error": "denied"}


async def test_a_failing_token_endpoint_is_an_internal_error_and_nothing_is_sent(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/token", reply(503, {"error": "down"}))
    server.on("/x", reply(200))
    action_file(tmp_path, server.url + "/x", authentication=_token_auth(server.url))
    async with runtime_for(tmp_path) as runtime:
        result = await runtime.invoke("loyaltyUpdate", PARAMS)
    assert result.status == "internalError" and result.error_code == "auth"
    assert "503" in (result.error or "")
    assert server.seen("/x") == []


async def test_every_call_emits_one_step_event_without_secrets(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.on("/token", reply(200, {"access_token": "sekr1t-token", "expires_in": 3600}))
    server.on("/x", reply(500), reply(200, {"ok": True}))
    action_file(tmp_path, server.url + "/x", authentication=_token_auth(server.url))
    log = tmp_path / "events" / "steps.jsonl"
    sink = JsonLinesSink(log)
    async with runtime_for(tmp_path, event_sinks=[sink]) as runtime:
        await runtime.invoke("loyaltyUpdate", PARAMS)
        await runtime.invoke("loyaltyUpdate", {"customer.points": 1})
    sink.close()
    text = log.read_text()
    assert "sekr1t" not in text and "ada@example.com" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["status"] == "http_200" and first["attempts"] == 2
    assert (first["originErrorClass"], first["originErrorCode"]) == ("http", "500")
    assert first["method"] == "POST" and first["endpoint"] == server.url + "/x"
    assert second["status"] == "internalError" and second["errorCode"] == "input"


def test_the_sync_facade_runs_the_same_core(tmp_path: Path) -> None:
    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()

        async def ok(request: web.Request) -> web.StreamResponse:
            return web.json_response({"echo": (await request.json())["customer"]["points"]})

        app.router.add_post("/x", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    server_loop = asyncio.new_event_loop()
    import threading

    runner, port = server_loop.run_until_complete(start())
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    try:
        action_file(tmp_path, f"http://127.0.0.1:{port}/x")
        with runtime_for(tmp_path, backoff=FAST_BACKOFF) as runtime:
            results = [
                runtime.invoke_sync("loyaltyUpdate", {**PARAMS, "customer.points": i}) for i in range(3)
            ]
        assert [r.response for r in results] == [{"echo": 0}, {"echo": 1}, {"echo": 2}]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), server_loop).result()
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join()
        server_loop.close()
