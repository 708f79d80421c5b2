"""A uvicorn server that says when it has started (`StartingServer`): served in the test's own
loop while a block runs (`serving`), or on a free loopback port in a thread of its own, for
tests driven from synchronous code (Playwright, screenshots): started when `serve_in_thread`
returns. No clock: a server that fails to start ends, which wakes the waiter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class ThreadedServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class StartingServer(uvicorn.Server):
    """Says when it has started, or has given up starting: `done_starting` is set then (a
    `threading.Event` for a server in a thread of its own, an `asyncio.Event` in a test's loop)."""

    def __init__(self, config: uvicorn.Config, done_starting: threading.Event | asyncio.Event) -> None:
        super().__init__(config)
        self.done_starting = done_starting

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.done_starting.set()


def serve_in_thread(app: Any) -> ThreadedServer:
    """Serve `app` until `stop()`; waits on the server's own start, no clock involved: a server
    that fails to start (a bad lifespan, a port it cannot bind) ends its thread, which wakes us."""
    started = threading.Event()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = StartingServer(config, started)

    def run() -> None:
        try:
            server.run()
        finally:
            server.done_starting.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait()
    assert server.started, "the service did not start (see its log above)"
    port = server.servers[0].sockets[0].getsockname()[1]
    return ThreadedServer(f"http://127.0.0.1:{port}", server, thread)


@asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[tuple[str, StartingServer]]:
    """The server of `config` (its host and port; port 0: a free one) in this loop while the
    block runs: its URL and the server."""
    started = asyncio.Event()
    server = StartingServer(config, started)
    task = asyncio.create_task(server.serve())
    task.add_done_callback(lambda _: started.set())  # a failed start ends the task
    await started.wait()
    assert server.started, "the service did not start (see its log above)"
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}", server
    finally:
        server.should_exit = True
        await task
