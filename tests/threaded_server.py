"""A uvicorn server on a free loopback port in a thread of its own, for tests driven from
synchronous code (Playwright, screenshots): started when `serve_in_thread` returns."""

from __future__ import annotations

import threading
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


class _Server(uvicorn.Server):
    """Says when it has started, or has given up starting (its thread then ends)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.done_starting = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.done_starting.set()


def serve_in_thread(app: Any) -> ThreadedServer:
    """Serve `app` until `stop()`; waits on the server's own start, no clock involved: a server
    that fails to start (a bad lifespan, a port it cannot bind) ends its thread, which wakes us."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))

    def run() -> None:
        try:
            server.run()
        finally:
            server.done_starting.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server.done_starting.wait()
    assert server.started, "the service did not start (see its log above)"
    port = server.servers[0].sockets[0].getsockname()[1]
    return ThreadedServer(f"http://127.0.0.1:{port}", server, thread)
