"""A real forward proxy on loopback for the proxy tests: CONNECT tunnels and absolute-form
GET/POST, counting what it carries and checking `Proxy-Authorization`.

`hosts` maps names to the address the proxy connects to (the proxy resolves for itself, so a
test can name a public-looking host the guard accepts while the proxy reaches loopback).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ForwardProxy:
    hosts: dict[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None  # (user, password) it requires, if any
    port: int = 0
    accepted: int = 0  # TCP connections from clients
    connects: list[str] = field(default_factory=list)  # CONNECT targets, in order
    forwarded: list[str] = field(default_factory=list)  # "METHOD absolute-URL", in order
    authorizations: list[str | None] = field(default_factory=list)  # Proxy-Authorization seen
    forwarded_heads: list[bytes] = field(default_factory=list)  # heads sent on to origins
    _server: asyncio.base_events.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _authorized(self, head: dict[str, str]) -> bool:
        given = head.get("proxy-authorization")
        self.authorizations.append(given)
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return given == f"Basic {expected}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            while True:
                request = await _read_head(reader)
                if request is None:
                    return
                line, head = request
                method, target, _ = line.split(" ", 2)
                if not self._authorized(head):
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    self.connects.append(target)
                    await self._tunnel(target, reader, writer)
                    return
                body = b""
                if "content-length" in head:
                    body = await reader.readexactly(int(head["content-length"]))
                self.forwarded.append(f"{method} {target}")
                await self._forward(method, target, head, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            self._tasks.discard(task)

    def _address(self, host: str) -> str:
        return self.hosts.get(host, host)

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(self._address(host.strip("[]")), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self, method: str, target: str, head: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        parts = urlsplit(target)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self._address(parts.hostname or ""), parts.port or 80
            )
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        fields = "".join(
            f"{name}: {value}\r\n"
            for name, value in head.items()
            if name not in ("proxy-authorization", "connection", "content-length")
        )
        sent = f"{method} {path} HTTP/1.1\r\n{fields}Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        self.forwarded_heads.append(sent.encode())
        up_writer.write(sent.encode() + body)
        await up_writer.drain()
        answer = await up_reader.read()  # the origin closes after its answer (Connection: close)
        up_writer.close()
        writer.write(answer)
        await writer.drain()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = raw.decode("latin-1").split("\r\n")
    head: dict[str, str] = {}
    for text in lines[1:]:
        if text:
            name, _, value = text.partition(":")
            head[name.strip().lower()] = value.strip()
    return lines[0], head


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def running_proxy(**options: object) -> AsyncIterator[ForwardProxy]:
    proxy = ForwardProxy(**options)  # type: ignore[arg-type]
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
