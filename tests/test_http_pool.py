"""Pools per host: a slow host fills its own pool and waiting line, never another host's; and
connecting: Happy Eyeballs across a host's addresses, a failed lookup as a connect error."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from raw_server import RawServer, raw_server, read_request

from actionrt.guard import DestinationPolicy
from actionrt.http import ConnectError, Http1Transport, HttpRequest, LookupFailedError, PoolLimits

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
NO_HANG = 10  # turns a call stuck behind another host into a failure instead of a hang


@pytest.fixture
async def slow() -> AsyncIterator[RawServer]:
    """Holds every request until `release` is set, then answers."""
    async with raw_server() as server:

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.request(reader)
                await server.release.wait()
                writer.write(OK)
                await writer.drain()

        server.handler = hold
        yield server


@pytest.fixture
async def fast() -> AsyncIterator[RawServer]:
    async with raw_server() as server:

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await read_request(reader)
                writer.write(OK)
                await writer.drain()

        server.handler = answer
        yield server


async def until(condition: object, what: str) -> None:
    async with asyncio.timeout(NO_HANG):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_a_host_waiting_for_its_connections_does_not_hold_up_another(
    slow: RawServer, fast: RawServer
) -> None:
    transport = Http1Transport(limits=PoolLimits(per_host=2, total=10))
    held = [asyncio.create_task(transport.send(HttpRequest("GET", slow.url + "/"))) for _ in range(50)]
    try:
        await until(lambda: len(slow.requests) == 2, "the slow host holds two requests")
        async with asyncio.timeout(NO_HANG):
            answers = [await transport.send(HttpRequest("GET", fast.url + "/")) for _ in range(3)]
        assert [a.status for a in answers] == [200] * 3
        assert fast.connections == 1 and slow.connections == 2
        assert not any(task.done() for task in held)  # the slow host's calls still wait their turn
    finally:
        slow.release.set()
        done = await asyncio.gather(*held)
        await transport.aclose()
    assert all(a.status == 200 for a in done) and slow.connections == 2


async def test_a_busy_host_never_closes_another_hosts_idle_connection(
    slow: RawServer, fast: RawServer
) -> None:
    transport = Http1Transport(limits=PoolLimits(per_host=2, total=3))
    try:
        await transport.send(HttpRequest("GET", fast.url + "/"))  # one idle connection to fast
        held = [asyncio.create_task(transport.send(HttpRequest("GET", slow.url + "/"))) for _ in range(5)]
        await until(lambda: len(slow.requests) == 2, "the slow host holds two requests")
        await transport.send(HttpRequest("GET", fast.url + "/"))
        assert fast.connections == 1  # its idle connection was kept, and reused
        slow.release.set()
        await asyncio.gather(*held)
    finally:
        slow.release.set()
        await transport.aclose()


async def test_the_total_limit_holds_across_hosts(slow: RawServer, fast: RawServer) -> None:
    transport = Http1Transport(limits=PoolLimits(per_host=5, total=2))
    held = [asyncio.create_task(transport.send(HttpRequest("GET", slow.url + "/"))) for _ in range(2)]
    request = HttpRequest("GET", fast.url + "/")
    waiting = asyncio.create_task(transport.send(request))
    try:
        await until(lambda: len(slow.requests) == 2 and request.waiting_for is not None, "both slots taken")
        assert request.waiting_for == "no connection slot free (2 open to all hosts)"
        assert not request.written and fast.connections == 0
        slow.release.set()
        async with asyncio.timeout(NO_HANG):
            assert (await waiting).status == 200
        assert request.written and request.waiting_for is None
    finally:
        slow.release.set()
        await asyncio.gather(*held, waiting, return_exceptions=True)
        await transport.aclose()


async def test_a_call_waiting_for_a_connection_says_so_and_is_not_written(slow: RawServer) -> None:
    transport = Http1Transport(limits=PoolLimits(per_host=1, total=10))
    first = asyncio.create_task(transport.send(HttpRequest("GET", slow.url + "/")))
    request = HttpRequest("GET", slow.url + "/")
    second = asyncio.create_task(transport.send(request))
    try:
        await until(lambda: request.waiting_for is not None, "the second call waits")
        assert request.waiting_for == f"no connection free to 127.0.0.1:{slow.port} (1 in use)"
        assert not request.written
        second.cancel()
        slow.release.set()
        assert (await first).status == 200
    finally:
        slow.release.set()
        await asyncio.gather(first, second, return_exceptions=True)
        await transport.aclose()
    assert len(slow.requests) == 1


# -- connecting: Happy Eyeballs and lookups -------------------------------------------------------


@pytest.fixture
def blackhole(fast: RawServer) -> Iterator[None]:
    """127.0.0.2 on the fast server's port: a listener whose accept queue is full, so a new
    connection attempt is never answered (the kernel drops its SYN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", fast.port))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.2", fast.port))
        fillers.append(filler)
    yield
    for filler in fillers:
        filler.close()
    listener.close()


async def test_an_address_that_never_answers_does_not_hold_up_the_next(
    fast: RawServer, blackhole: None
) -> None:
    async def both(host: str, port: int) -> list[tuple[str, int]]:
        return [("127.0.0.2", port), ("127.0.0.1", port)]

    policy = DestinationPolicy(allow_private_network=True, resolver=both)
    transport = Http1Transport(policy=policy)
    try:
        async with asyncio.timeout(NO_HANG):
            answer = await transport.send(HttpRequest("GET", f"http://partner.example:{fast.port}/"))
    finally:
        await transport.aclose()
    assert answer.status == 200 and fast.connections == 1


async def test_a_failed_lookup_is_a_connect_error_of_its_own() -> None:
    async def nowhere(host: str, port: int) -> list[tuple[str, int]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    transport = Http1Transport(policy=DestinationPolicy(allow_private_network=True, resolver=nowhere))
    request = HttpRequest("GET", "http://partner.example/")
    try:
        with pytest.raises(ConnectError) as caught:
            await transport.send(request)
    finally:
        await transport.aclose()
    assert isinstance(caught.value, LookupFailedError) and caught.value.kind == "lookupFailed"
    assert "partner.example" in str(caught.value) and not request.written


async def test_requests_on_a_kept_alive_connection_never_ask_for_the_running_loop(
    fast: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.11 `asyncio.get_running_loop()` is a getpid system call each time: the
    connection keeps its loop once made, so taking it from the pool, writing and giving it back
    need none."""
    transport = Http1Transport()
    asked = 0
    running_loop = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        nonlocal asked
        asked += 1
        return running_loop()

    try:
        first = await transport.send(HttpRequest("GET", fast.url + "/"))  # makes the connection
        monkeypatch.setattr(asyncio, "get_running_loop", counted)
        answers = [await transport.send(HttpRequest("GET", fast.url + "/")) for _ in range(5)]
    finally:
        monkeypatch.undo()
        await transport.aclose()
    assert [a.status for a in [first, *answers]] == [200] * 6
    assert fast.connections == 1  # the same connection each time
    assert asked == 0
