"""Hostile answers from a raw loopback server: each ends as a clear result, never a hang, and
never makes the client hold more than the body cap plus 64 KiB."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from raw_server import RawHandler, RawServer, raw_server, read_request

from actionrt.http import BodyTooLargeError, Http1Transport, HttpRequest, NetworkError
from actionrt.http.protocol import MAX_HEAD, Http1Connection

MAX_BODY = 10_000
# The calls below would wait for these answers forever; this only turns a hang into a failure.
NO_HANG = 10


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    async with raw_server() as server:
        yield server


@pytest.fixture
async def http1() -> AsyncIterator[Http1Transport]:
    transport = Http1Transport(max_body=MAX_BODY)
    yield transport
    await transport.aclose()


def endless(head: bytes, piece: bytes) -> RawHandler:
    """A handler answering `head`, then `piece` over and over until the client hangs up."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head)
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()

    return handler


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"


@pytest.mark.parametrize(
    ("head", "piece"),
    [
        (CHUNKED + b"X-Trailer: ", b"a" * 4096),  # one trailer line that never ends
        (CHUNKED, b"X-Trailer: a\r\n" * 300),  # trailer lines that never end
        (b"HTTP/1.1 200 OK\r\nX-Big: ", b"b" * 4096),  # a header line that never ends
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=", b"e" * 4096),  # chunk line
    ],
    ids=["trailer-line", "trailer-lines", "header-line", "chunk-extension"],
)
async def test_an_answer_that_never_ends_is_a_network_error(
    raw: RawServer, http1: Http1Transport, head: bytes, piece: bytes
) -> None:
    raw.handler = endless(head, piece)
    async with asyncio.timeout(NO_HANG):
        with pytest.raises(NetworkError, match=r"64 KiB|48 KiB"):
            await http1.send(HttpRequest("GET", raw.url + "/"))


class Recorder:
    """A stand-in asyncio transport for feeding a connection by hand."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "piece", [b"a" * 1000, b"X-T: " + b"t" * 100 + b"\r\n"], ids=["one-line", "many-lines"]
)
async def test_a_never_ending_trailer_is_refused_within_64_kib(piece: bytes) -> None:
    connection = Http1Connection(lambda _: None)
    connection.connection_made(Recorder())  # type: ignore[arg-type]
    answer = connection.exchange(b"GET / HTTP/1.1\r\n\r\n", False, MAX_BODY)
    connection.data_received(CHUNKED + (b"X-T: " if piece.startswith(b"a") else b""))
    fed = 0
    while not answer.done():
        connection.data_received(piece)
        fed += len(piece)
        assert fed < MAX_HEAD + 16 * 1024, "kept reading a trailer past the bound"
    assert isinstance(answer.exception(), Exception) and connection.closed


async def test_a_multi_member_gzip_body_is_read_whole(raw: RawServer, http1: Http1Transport) -> None:
    body = gzip.compress(b'{"a": 1, ') + gzip.compress(b'"b": 2}')
    raw.handler = answer_once(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    answer = await http1.send(HttpRequest("GET", raw.url + "/"))
    assert answer.content == b'{"a": 1, "b": 2}'


async def test_gzip_as_a_transfer_coding_is_undone(raw: RawServer, http1: Http1Transport) -> None:
    body = gzip.compress(b'{"ok": true}')
    raw.handler = answer_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )
    answer = await http1.send(HttpRequest("GET", raw.url + "/"))
    assert answer.content == b'{"ok": true}'


async def test_a_gzip_body_that_inflates_past_the_cap_over_members_is_refused(
    raw: RawServer, http1: Http1Transport
) -> None:
    member = gzip.compress(b"x" * (MAX_BODY // 2 + 1))
    body = member * 2
    raw.handler = answer_once(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    with pytest.raises(BodyTooLargeError, match="decoded"):
        await http1.send(HttpRequest("GET", raw.url + "/"))


async def test_a_bare_lf_answer_is_a_network_error(raw: RawServer, http1: Http1Transport) -> None:
    raw.handler = answer_once(b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", keep_open=True)
    async with asyncio.timeout(NO_HANG):
        with pytest.raises(NetworkError):
            await http1.send(HttpRequest("GET", raw.url + "/"))


@pytest.mark.parametrize(
    "first",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"stale"',
        b'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"stale"',
    ],
    ids=["second-answer", "body-after-204"],
)
async def test_stale_bytes_never_become_the_next_answer(
    raw: RawServer, http1: Http1Transport, first: bytes
) -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            await read_request(reader)
            served += 1
            writer.write(first if served == 1 else b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"fresh"')
            await writer.drain()

    raw.handler = handler
    await http1.send(HttpRequest("GET", raw.url + "/"))
    follow_ups = [(await http1.send(HttpRequest("GET", raw.url + "/"))).content for _ in range(5)]
    assert follow_ups == [b'"fresh"'] * 5 and raw.connections == 2


def answer_once(response: bytes, *, keep_open: bool = False) -> RawHandler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response)
        await writer.drain()
        if keep_open:
            await reader.read()

    return handler
