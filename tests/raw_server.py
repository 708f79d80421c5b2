"""A raw loopback TCP server for HTTP tests that need the socket itself: resets, slow bodies,
broken framing, exact request bytes. Shared by the transport tests and the end-to-end suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Runs `handler` (set by the test) per connection; counts connections, keeps the requests
    read through `request()`, and holds `release` for handlers that wait."""

    def __init__(self) -> None:
        self.port = 0
        self.handler: RawHandler | None = None
        self.connections = 0
        self.requests: list[bytes] = []
        self.release = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        assert self.handler is not None
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request and keep it in `requests`."""
        whole = await read_request(reader)
        self.requests.append(whole)
        return whole


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 request (head and Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def raw_server() -> AsyncIterator[RawServer]:
    """A started RawServer on 127.0.0.1, stopped (and its waiters released) on exit."""
    server = RawServer()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        server.release.set()
        listener.close()
