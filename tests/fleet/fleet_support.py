"""The fleet's test bench (the fixtures are registered in conftest.py): the real Redis, a real
HTTP endpoint on loopback that records what it receives, and real `actionrt worker`
subprocesses. Every test uses its own queue name."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from actionrt.fleet.redis_streams import QueueKeys

REDIS_URL = "redis://127.0.0.1:6379/0"


def token(n: int) -> str:
    """The endpoint's n-th token: long and distinctive, so finding it in stored bytes is no chance."""
    return f"fleet-test-token-{n}-3c9e51d7a04b"


@dataclass
class Seen:
    path: str
    key: str | None
    authorization: str | None
    body: Any


@dataclass
class Endpoint:
    """A loopback HTTP endpoint: counts what arrives, holds answers while `open` is clear,
    issues tokens at /token and refuses the tokens in `revoked` with 401."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    running: int = 0
    open: asyncio.Event = field(default_factory=asyncio.Event)
    token_requests: int = 0
    revoked: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self) -> list[str]:
        return [s.key for s in self.seen if s.key is not None]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until `predicate()` holds; re-checked each time a request arrives or ends."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        self.changed.set()
        return web.json_response({"access_token": token(self.token_requests), "expires_in": 3600})

    async def call(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        authorization = request.headers.get("Authorization")
        self.seen.append(Seen(request.path, request.headers.get("Idempotency-Key"), authorization, body))
        self.running += 1
        self.changed.set()
        try:
            if authorization is not None and authorization.removeprefix("Bearer ") in self.revoked:
                return web.json_response({"error": "invalid_token"}, status=401)
            await self.open.wait()
            return web.json_response({"ok": True, "path": request.path})
        finally:
            self.running -= 1
            self.changed.set()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    server = Endpoint()
    server.open.set()
    app = web.Application()
    app.router.add_post("/token", server.token)
    app.router.add_route("*", "/{tail:.*}", server.call)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        server.open.set()
        await runner.cleanup()


@pytest.fixture
def queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(queue_name: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:  # only this test's keys: the Redis is shared
        keys = [k async for k in client.scan_iter(match=QueueKeys(queue_name).base + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def write_action(directory: Path, url: str, *, name: str = "ping", **extra: Any) -> Path:
    """An action file: POST `url` with one variable integer `n` and an Idempotency-Key header."""
    definition = {
        "name": name,
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        "idempotencyKey": "Idempotency-Key",
        **extra,
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(definition))
    return path


class WorkerProcess:
    """An `actionrt worker` subprocess whose log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()
        self._new_line.set()

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def wait_for(self, text: str, times: int = 1, timeout: float = 60.0) -> None:
        """Wait until `text` appears in `times` log lines (or the process ends: fail)."""
        async with asyncio.timeout(timeout):
            while self.count(text) < times:
                if self.process.returncode is not None or self._reader.done():
                    raise AssertionError(f"worker ended before logging {text!r}:\n" + "\n".join(self.lines))
                self._new_line.clear()
                await self._new_line.wait()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, timeout: float = 60.0) -> int:
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await self._reader
        return code


@pytest.fixture
async def start_worker(queue_name: str) -> AsyncIterator[Callable[..., Any]]:
    """`await start_worker(path, *options)`: a worker on the test's queue, serving once ready."""
    started: list[WorkerProcess] = []

    async def start(
        *arguments: str | Path, ready: bool = True, queue: str | None = None, redis: str = REDIS_URL
    ) -> WorkerProcess:
        command = [
            sys.executable,
            "-c",
            "from actionrt.cli import main; main()",
            "worker",
            *map(str, arguments),
            "--redis",
            redis,
            "--queue",
            queue or queue_name,
            "--allow-private-network",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = WorkerProcess(process)
        started.append(worker)
        if ready:
            await worker.wait_for("serving")
        return worker

    yield start
    for worker in started:
        if worker.process.returncode is None:
            worker.signal(signal.SIGKILL)
            await worker.wait()


class RedisProxy:
    """A TCP proxy to the real Redis that can be cut (`down`) and restored (`up`): a Redis
    outage for the workers behind it, without touching the Redis others share."""

    def __init__(self) -> None:
        self.port = 0
        self.available = True
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.available:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._pipes |= {writer, upstream_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        self._pipes -= {writer, upstream_writer}

    def down(self) -> None:
        self.available = False
        for pipe in list(self._pipes):
            pipe.close()

    def up(self) -> None:
        self.available = True

    async def stop(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
