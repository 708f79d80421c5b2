"""`actionrt serve`'s protocol (`protocol.py`): plain invokes answered on the connection, every
other request through uvicorn and the application, on a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import Endpoint, action, make_app
from threaded_server import StartingServer, serving
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from actionrt.service.app import MAX_BODY, ServiceApp
from actionrt.service.protocol import OK_HEAD, InvokeProtocol, PlainCycle, PlainHead, uvicorn_config

CALL = {"params": {"email": "ada@example.com"}}


@dataclass
class Served:
    app: ServiceApp
    url: str
    port: int
    server: StartingServer
    routed: list[str]  # the requests that reached the application


@pytest.fixture
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """`actionrt serve`'s uvicorn set-up on a free loopback port, in this test's loop (with the
    API token the test's indirect parameter gives, if any)."""
    app = make_app(tmp_path, examples=None, api_token=getattr(request, "param", None))
    assert isinstance(app, ServiceApp)
    routed: list[str] = []
    application = app.__call__

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            routed.append(f"{scope['method']} {scope['path']}")
        await application(scope, receive, send)

    config = uvicorn_config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", headers=[("x-served-by", "test")]
    )
    config.app = counted  # the requests that reach the application are counted
    await app.state.service.calls.open()
    async with serving(config) as (url, server):
        yield Served(app, url, int(url.rsplit(":", 1)[1]), server, routed)
    await app.state.service.calls.aclose()
    app.state.service.store.close()


async def create(served: Served, url: str) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.post("/actions", json=action(url=url))).status_code == 201
    served.routed.clear()


async def exchange(port: int, raw: bytes) -> bytes:
    """Write `raw` on one connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    answer = await reader.read()
    writer.close()
    return answer


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One answer on a kept-alive connection: its head and its body (of its content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head)
    assert length is not None, head
    return head, await reader.readexactly(int(length[1]))


def invoke_request(body: bytes = json.dumps(CALL).encode(), extra: bytes = b"") -> bytes:
    return (
        b"POST /actions/notify/invoke HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%s\r\n%s" % (len(body), extra, body)
    )


async def test_plain_invokes_are_answered_on_the_connection_others_by_the_application(
    served: Served, endpoint: Endpoint
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    async with httpx.AsyncClient(base_url=served.url) as client:  # one kept-alive connection
        first = await client.post("/actions/notify/invoke", json=CALL)
        health = await client.get("/healthz")
        second = await client.post("/actions/notify/invoke", json=CALL)
        routed = await client.post("/actions/notify/invoke?async=no", json=CALL)
    assert served.routed == ["GET /healthz", "POST /actions/notify/invoke"]
    assert first.status_code == second.status_code == routed.status_code == health.status_code == 200
    assert first.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert "date" in first.headers and int(first.headers["content-length"]) == len(first.content)
    assert first.headers["x-served-by"] == routed.headers["x-served-by"] == "test"  # uvicorn's defaults
    one, other = first.json(), routed.json()
    assert set(one) == set(other) and one["status"] == "http_200" and one["callId"] != second.json()["callId"]
    assert {k: v for k, v in one.items() if k not in ("callId", "elapsed")} == {
        k: v for k, v in other.items() if k not in ("callId", "elapsed")
    }
    assert len(endpoint.received) == 3


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [(b'{"params": ', 400, "not valid JSON"), (b'{"parms": {}}', 422, "parms")],
)
async def test_a_body_the_route_refuses_gets_the_applications_problem(
    served: Served, endpoint: Endpoint, body: bytes, status: int, says: str
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    async with httpx.AsyncClient(base_url=served.url) as client:
        answer = await client.post(
            "/actions/notify/invoke", content=body, headers={"content-type": "application/json"}
        )
        after = await client.post("/actions/notify/invoke", json=CALL)  # the connection goes on
    assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
    assert says in answer.text
    assert after.status_code == 200 and after.json()["status"] == "http_200"
    assert served.routed == ["POST /actions/notify/invoke"]
    assert endpoint.received and len(endpoint.received) == 1


async def test_an_unknown_action_is_the_routes_404(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        missing = await client.post("/actions/nothere/invoke", json=CALL)
    assert missing.status_code == 404 and "nothere" in missing.json()["detail"]
    assert served.routed == ["POST /actions/nothere/invoke"]


async def test_pipelined_requests_are_answered_in_order(served: Served, endpoint: Endpoint) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    raw = invoke_request() + b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    raw += invoke_request(b'{"parms": {}}') + invoke_request(extra=b"connection: close\r\n")
    answer = await exchange(served.port, raw)
    heads = re.findall(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n((?:[^\r]+\r\n)*)\r\n", answer)
    assert [status for status, _ in heads] == [b"200", b"200", b"422", b"200"]
    assert [b"connection: close" in head for _, head in heads] == [False, False, False, True]
    assert answer.count(b'"status":"http_200"') == 2 and b'"actions":1' in answer
    assert len(endpoint.received) == 2


async def test_every_form_of_an_invokes_target_is_served_as_before(
    served: Served, endpoint: Endpoint
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    plain = invoke_request(extra=b"connection: close\r\n")
    for target in (b"http://127.0.0.1/actions/notify/invoke", b"/actions/notify/invoke#top"):
        answer = await exchange(served.port, plain.replace(b"/actions/notify/invoke", target, 1))
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"status":"http_200"' in answer
    assert served.routed == []  # served plainly, as the origin form is
    escaped = await exchange(served.port, plain.replace(b"notify", b"%6Eotify", 1))
    assert escaped.startswith(b"HTTP/1.1 200 OK\r\n") and b'"status":"http_200"' in escaped
    assert served.routed == ["POST /actions/notify/invoke"]  # the router decodes an escaped name
    assert len(endpoint.received) == 3


async def test_http_1_0_and_connection_close_end_the_connection(served: Served, endpoint: Endpoint) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    for raw in (
        invoke_request(extra=b"connection: close\r\n"),
        invoke_request().replace(b"HTTP/1.1", b"HTTP/1.0"),
    ):
        answer = await exchange(served.port, raw)  # read() returns: the server closed it
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in answer
        assert answer.endswith(b"}")
    assert len(endpoint.received) == 2


async def test_a_connections_repeated_head_is_decided_once_and_anything_else_again(
    served: Served, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keep-alive client sends the same head each time but its `content-length`: it is decided
    once a connection. A head that differs in anything else (a browser's cookie, another action,
    a body past the cap) is decided again, as on a fresh connection."""
    await create(served, f"{endpoint.base_url}/ok")
    decided = 0
    plain_invoke = served.app.hot_path.plain_invoke

    def counted(*args: Any) -> Any:
        nonlocal decided
        decided += 1
        return plain_invoke(*args)

    monkeypatch.setattr(served.app.hot_path, "plain_invoke", counted)
    longer = {"params": {"email": "grace.hopper@example.com"}}
    too_long = {"params": {"email": "x" * MAX_BODY}}
    async with httpx.AsyncClient(base_url=served.url) as client:  # one kept-alive connection
        answers = [
            await client.post("/actions/notify/invoke", json=CALL),
            await client.post("/actions/notify/invoke", json=longer),
            await client.post("/actions/notify/invoke", json=too_long),
        ]
        # The first's head again but for its length (the third's past the cap: the application
        # answers it, deciding it once more for itself).
        assert decided - len(served.routed) == 1
        answers += [
            await client.post("/actions/notify/invoke", json=CALL, headers={"cookie": "seen=1"}),
            await client.post("/actions/nothere/invoke", json=CALL),
            await client.post("/actions/notify/invoke", json=CALL),
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 413, 200, 404, 200]
    assert served.routed == [
        "POST /actions/notify/invoke",  # past the cap
        "POST /actions/notify/invoke",  # with a cookie: the security layer decides it in full
        "POST /actions/nothere/invoke",
    ]
    assert len(endpoint.received) == 4


@pytest.mark.parametrize("served", ["the-api-token"], indirect=True)
async def test_a_head_decided_once_never_lets_another_token_through(
    served: Served, endpoint: Endpoint
) -> None:
    """With an API token, the token is part of the head: the same head with another token is
    decided again, and refused, however many times the right one came first."""
    right, wrong = {"authorization": "Bearer the-api-token"}, {"authorization": "Bearer guessed"}
    async with httpx.AsyncClient(base_url=served.url) as client:  # one kept-alive connection
        created = await client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"), headers=right)
        assert created.status_code == 201
        served.routed.clear()
        answers = [
            await client.post("/actions/notify/invoke", json=CALL, headers=token)
            for token in (right, right, wrong, right)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 401, 200]
    assert served.routed == ["POST /actions/notify/invoke"]  # the wrong token: the application's 401
    assert len(endpoint.received) == 3


@pytest.mark.parametrize("served", ["the-api-token"], indirect=True)
async def test_a_head_read_without_the_parser_never_lets_another_token_through(
    served: Served, endpoint: Endpoint
) -> None:
    """The same, each request in one write (so read whole: its head's bytes known after the
    first), the wrong token as long as the right one."""
    async with httpx.AsyncClient(base_url=served.url) as client:
        created = await client.post(
            "/actions",
            json=action(url=f"{endpoint.base_url}/ok"),
            headers={"authorization": "Bearer the-api-token"},
        )
        assert created.status_code == 201
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    statuses = []
    try:
        for token in (b"the-api-token", b"the-api-token", b"the-api-tokeX", b"the-api-token"):
            writer.write(invoke_request(extra=b"authorization: Bearer %s\r\n" % token))
            head, _ = await read_answer(reader)
            statuses.append(int(head[9:12]))
    finally:
        writer.close()
    assert statuses == [200, 200, 401, 200]
    assert len(endpoint.received) == 3


async def test_http_1_0_asking_to_be_kept_alive_after_http_1_1_ends_the_connection(
    served: Served, endpoint: Endpoint
) -> None:
    """HTTP/1.0 is never kept alive, even asking for it with the head (`connection: keep-alive`)
    that an HTTP/1.1 request just had on the same connection."""
    await create(served, f"{endpoint.base_url}/ok")
    kept = invoke_request(extra=b"connection: keep-alive\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(kept)
        head, _ = await read_answer(reader)
        writer.write(kept.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        last = await reader.read()  # returns: the server closed the connection
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" not in head
    assert last.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in last
    assert len(endpoint.received) == 2


@pytest.fixture
async def gated() -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Event]]:
    """An endpoint that holds each answer until `release` is set; `arrived`: a call came."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({"messageId": "m-1", "status": "sent"})

    application = web.Application()
    application.router.add_post("/hold", hold)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hold", arrived, release
    await runner.cleanup()


async def held_invoke(
    served: Served, gated: tuple[str, asyncio.Event, asyncio.Event]
) -> tuple[asyncio.Event, tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain invoke sent on a connection of its own and held at the endpoint: the event that
    releases the endpoint's answer, and the connection."""
    url, arrived, release = gated
    await create(served, url)
    connection = await asyncio.open_connection("127.0.0.1", served.port)
    connection[1].write(invoke_request())
    await arrived.wait()
    return release, connection


async def test_a_client_gone_mid_call_costs_nothing_but_its_answer(
    served: Served, gated: tuple[str, asyncio.Event, asyncio.Event]
) -> None:
    release, (_, writer) = await held_invoke(served, gated)
    writer.close()
    await writer.wait_closed()
    release.set()
    async with httpx.AsyncClient(base_url=served.url) as client:  # the service goes on
        calls = await client.get("/actions/notify/calls")
        again = await client.post("/actions/notify/invoke", json=CALL)
    assert again.status_code == 200 and again.json()["status"] == "http_200"
    assert calls.json()["counts"] == {"http_200": 1}  # the call itself finished and was recorded


async def test_shutdown_lets_the_call_in_flight_answer(
    served: Served, gated: tuple[str, asyncio.Event, asyncio.Event]
) -> None:
    release, (reader, writer) = await held_invoke(served, gated)
    for connection in list(served.server.server_state.connections):
        connection.shutdown()  # what uvicorn's graceful shutdown does first
    release.set()
    answer = await reader.read()  # the answer, then the close
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == "http_200"


async def test_an_error_of_the_hot_path_is_uvicorns_500_and_the_service_goes_on(
    served: Served, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    answer_of = served.app.hot_path.answer

    async def broken(invoke: Any, body: bytes) -> bytes | None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(served.app.hot_path, "answer", broken)
    answer = await exchange(served.port, invoke_request())  # answered, then closed
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert answer.endswith(b"\r\n\r\nInternal Server Error") and b"a bug" not in answer
    monkeypatch.setattr(served.app.hot_path, "answer", answer_of)
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.post("/actions/notify/invoke", json=CALL)).json()["status"] == "http_200"


async def test_a_connections_plain_invokes_share_one_task_that_ends_with_the_connection(
    served: Served, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    answer_of = served.app.hot_path.answer
    answered_by: list[asyncio.Task[Any] | None] = []

    async def watched(invoke: Any, body: bytes) -> bytes | None:
        answered_by.append(asyncio.current_task())
        return await answer_of(invoke, body)

    monkeypatch.setattr(served.app.hot_path, "answer", watched)
    request = invoke_request()
    first, second = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(2)]
    for reader, writer in (first, first, second, first, second):
        writer.write(request)
        head, body = await read_answer(reader)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert json.loads(body)["status"] == "http_200"
    # One task per connection, not per request.
    assert answered_by[0] is answered_by[1] is answered_by[3] and answered_by[2] is answered_by[4]
    assert answered_by[0] is not answered_by[2]
    first_task, second_task = answered_by[0], answered_by[2]
    assert first_task is not None and second_task is not None
    # Idle, each ends with its connection: one the client closes, one the server shuts down
    # (what uvicorn's graceful shutdown does first, then waits for the tasks).
    first[1].close()
    await asyncio.wait_for(first_task, 5)
    (connection,) = served.server.server_state.connections
    connection.shutdown()
    await asyncio.wait_for(second_task, 5)
    assert await second[0].read() == b""  # closed
    assert served.server.server_state.tasks == set()


async def test_a_request_read_whole_is_called_though_its_connection_is_lost_before_it_starts(
    served: Served, endpoint: Endpoint
) -> None:
    await create(served, f"{endpoint.base_url}/ok")
    connection, _ = connect(served.app)
    connection.data_received(invoke_request())  # read whole: its call is due
    worker = connection.plain_worker
    connection.connection_lost(None)  # before the worker's first step
    assert worker is not None
    await asyncio.wait_for(worker, 5)
    async with httpx.AsyncClient(base_url=served.url) as client:
        calls = await client.get("/actions/notify/calls")
    assert calls.json()["counts"] == {"http_200": 1}  # called, as its own task would have been


class Loopback(asyncio.Transport):
    """A connection's transport, as far as a protocol asks it where it is and closes it."""

    closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@dataclass
class Timer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """The part of a loop a connection's keep-alive timer uses, its time moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance_to(self, now: float) -> None:
        """Run the timers due by `now`, in order."""
        while due := sorted(
            (t for t in self.timers if not t.cancelled and t.when <= now), key=lambda t: t.when
        ):
            self.now = due[0].when
            self.timers.remove(due[0])
            due[0].callback()
        self.now = now


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[ServiceApp]:
    app = make_app(tmp_path, examples=None)
    assert isinstance(app, ServiceApp)
    yield app
    app.state.service.store.close()


def connect(app: ServiceApp, loop: Any = None) -> tuple[InvokeProtocol, Loopback]:
    """A connection of `actionrt serve`'s protocol, not on a socket."""
    config = uvicorn_config(app, host="127.0.0.1", port=8000, lifespan="off")
    config.load()
    protocol = config.http_protocol_class(
        config=config, server_state=ServerState(), app_state={"k": 1}, _loop=loop
    )
    assert isinstance(protocol, InvokeProtocol)
    transport = Loopback()
    protocol.connection_made(transport)
    return protocol, transport


@pytest.fixture
def connection(app: ServiceApp) -> InvokeProtocol:
    return connect(app)[0]


async def test_a_connection_closes_when_idle_the_keep_alive_timeout_after_its_last_answer(
    app: ServiceApp,
) -> None:
    clock = Clock()
    connection, transport = connect(app, clock)
    assert connection.timeout_keep_alive == 5
    connection.on_response_complete()  # answered at 0: closes at 5 unless busy
    clock.advance_to(3)
    connection.data_received(b"GET /healthz HTTP/1.1\r\n")  # busy at 3 (a head in parts)
    clock.advance_to(4)
    connection.on_response_complete()  # answered at 4: closes at 9
    clock.advance_to(8.9)
    assert not transport.closed and len(clock.timers) == 1  # the timer of 0, pushed to 9
    clock.advance_to(9)
    assert transport.closed


async def test_a_connection_busy_when_its_timer_runs_out_is_kept_until_idle_long_enough(
    app: ServiceApp,
) -> None:
    clock = Clock()
    connection, transport = connect(app, clock)
    connection.on_response_complete()
    clock.advance_to(1)
    connection.data_received(b"POST /actions/notify/invoke HTTP/1.1\r\n")  # a request in flight
    clock.advance_to(60)
    assert not transport.closed and clock.timers == []
    connection.on_response_complete()  # answered at 60
    clock.advance_to(64.9)
    assert not transport.closed
    clock.advance_to(65)
    assert transport.closed


async def test_a_lost_connection_leaves_no_timer(app: ServiceApp) -> None:
    clock = Clock()
    connection, _ = connect(app, clock)
    connection.on_response_complete()
    connection.connection_lost(None)
    assert all(timer.cancelled for timer in clock.timers)


async def test_a_request_the_application_answers_starts_with_uvicorns_scope(
    connection: InvokeProtocol,
) -> None:
    HttpToolsProtocol.on_message_begin(connection)  # what uvicorn makes at a request's start
    assert connection._scope(connection.headers) == connection.scope
    assert connection._scope(connection.headers)["state"] is not connection.app_state


async def test_a_plain_answers_head_follows_uvicorns_default_headers(connection: InvokeProtocol) -> None:
    connection.server_state.default_headers = [(b"date", b"Mon, 01 Dec 2025 10:00:00 GMT")]
    assert connection._ok_head() == OK_HEAD + b"date: Mon, 01 Dec 2025 10:00:00 GMT\r\n"
    connection.server_state.default_headers = [(b"date", b"Mon, 01 Dec 2025 10:00:01 GMT"), (b"x-a", b"1")]
    assert connection._ok_head() == OK_HEAD + b"date: Mon, 01 Dec 2025 10:00:01 GMT\r\nx-a: 1\r\n"


class Reads:
    """A connection's plain invokes as it read them (its worker stood in for: each is answered
    at once), and how many requests went through its parser."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed = 0
        begin = InvokeProtocol.on_message_begin

        def counted(protocol: InvokeProtocol) -> None:
            self.parsed += 1
            begin(protocol)

        monkeypatch.setattr(InvokeProtocol, "on_message_begin", counted)  # before the parser binds it
        self.plain: list[PlainCycle] = []

    def connect(self, app: ServiceApp) -> InvokeProtocol:
        connection = connect(app)[0]

        def answered(cycle: PlainCycle) -> None:
            self.plain.append(cycle)
            cycle.response_complete = True

        connection._read_plain = answered  # type: ignore[method-assign]
        return connection


def read_as(cycle: PlainCycle) -> tuple[Any, ...]:
    return (
        cycle.invoke,
        cycle.headers,
        cycle.path,
        cycle.query,
        cycle.http_version,
        cycle.keep_alive,
        cycle.body,
    )


async def test_a_connections_known_head_is_read_without_the_parser_as_the_parser_reads_it(
    app: ServiceApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a plain invoke came whole in one read, the same head's bytes again (but its length's
    digits) with the whole body are read without the parser: the same request as the parser's."""
    reads = Reads(monkeypatch)
    connection = reads.connect(app)
    longer = json.dumps({"params": {"email": "grace.hopper@example.com"}}).encode()
    for body in (json.dumps(CALL).encode(), longer, b"{}", longer):
        connection.data_received(invoke_request(body))
    assert reads.parsed == 1  # the first only
    for body in (longer, b"{}"):
        reads.connect(app).data_received(invoke_request(body))  # a connection's first: parsed
    assert reads.parsed == 3
    known, parsed = reads.plain[1:3], reads.plain[4:]
    assert [read_as(cycle) for cycle in known] == [read_as(cycle) for cycle in parsed]
    assert [bytes(cycle.body) for cycle in reads.plain[:4]] == [
        json.dumps(CALL).encode(),
        longer,
        b"{}",
        longer,
    ]
    assert known[1].headers[2] == (b"content-length", b"2")


@pytest.mark.parametrize(
    ("reads_of", "requests"),
    [
        pytest.param(lambda raw: [raw[:-5], raw[-5:]], 1, id="the body in two reads"),
        pytest.param(lambda raw: [raw[:40], raw[40:]], 1, id="the head in two reads"),
        pytest.param(lambda raw: [raw + raw], 2, id="two requests in one read"),
        pytest.param(lambda raw: [raw.replace(b"json", b"JSON", 1)], 1, id="another head"),
        pytest.param(lambda raw: [raw.replace(b"length: ", b"length:  ", 1)], 1, id="other spaces"),
        pytest.param(lambda raw: [b"\r\n" + raw], 1, id="a blank line first"),
    ],
)
async def test_anything_else_goes_through_the_parser(
    app: ServiceApp,
    monkeypatch: pytest.MonkeyPatch,
    reads_of: Callable[[bytes], list[bytes]],
    requests: int,
) -> None:
    reads = Reads(monkeypatch)
    connection = reads.connect(app)
    connection.data_received(invoke_request())  # the head's bytes known from here on
    for data in reads_of(invoke_request(b'{"params": {}}')):
        connection.data_received(data)
    assert reads.parsed == 1 + requests and not connection.reading
    assert [bytes(cycle.body) for cycle in reads.plain[1:]] == [b'{"params": {}}'] * requests


async def test_a_known_head_whose_body_is_past_the_cap_is_the_applications_413(
    app: ServiceApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = Reads(monkeypatch)
    connection = reads.connect(app)
    written = bytearray()
    monkeypatch.setattr(Loopback, "write", lambda self, data: written.extend(data), raising=False)
    monkeypatch.setattr(Loopback, "pause_reading", lambda self: None, raising=False)  # a large body
    connection.data_received(invoke_request())
    connection.data_received(invoke_request(b" " * (MAX_BODY + 1)))  # one read, whole, too long
    await asyncio.gather(*connection.tasks)
    assert reads.parsed == 2 and len(reads.plain) == 1
    assert written.startswith(b"HTTP/1.1 413 ")


HEADS = [b"", b"x-trace: 1\r\n", b"x-trace: 22\r\n"]  # the known head, and two others


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=st.lists(st.tuples(st.sampled_from(HEADS), st.binary(max_size=40)), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000), max_size=4),
    alone=st.booleans(),
)
async def test_a_connection_reads_any_stream_of_requests_as_the_parser_alone_does(
    app: ServiceApp,
    monkeypatch: pytest.MonkeyPatch,
    requests: list[tuple[bytes, bytes]],
    cuts: list[int],
    alone: bool,
) -> None:
    """Requests of the known head and of others, any bodies, the stream cut anywhere (or each
    request in a read of its own): read as by a connection whose known heads are never read
    without the parser."""
    raw = [invoke_request(body, extra=extra) for extra, body in requests]
    stream = b"".join(raw)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reads_of = (
        raw
        if alone
        else [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True) if a < b]
    )
    read = []
    for without in (False, True):
        with monkeypatch.context() as patched:
            if without:
                patched.setattr(PlainHead, "sent", lambda self, data: None)
            reads = Reads(patched)
            connection = reads.connect(app)
            connection.data_received(invoke_request())  # the known head
            for data in reads_of:
                connection.data_received(data)
            read.append([read_as(cycle) for cycle in reads.plain])
    assert read[0] == read[1] and len(read[0]) == 1 + len(requests)
