"""A loopback partner for the observability tests, and the actions that call it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from actionrt.retry import Backoff

FAST_BACKOFF = Backoff(base=0.001, cap=0.005)
SENTINEL = "s3ntinel-Secret-Value-42"


class Partner:
    """Answers /ok 200, /missing 404, /flaky 503 then 200, /big 200 with a 10 kB body; keeps
    every request's headers and query."""

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[dict[str, Any]] = []
        self._flaky = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(
            {"path": request.path, "headers": dict(request.headers), "query": dict(request.query)}
        )
        if request.path.startswith("/missing"):
            return web.json_response({"error": "not found"}, status=404)
        if request.path.startswith("/flaky"):
            self._flaky += 1
            if self._flaky % 2 == 1:
                return web.json_response({"error": "busy"}, status=503)
        if request.path.startswith("/big"):
            return web.json_response({"blob": "x" * 10_000})
        return web.json_response({"ok": True}, headers={"set-cookie": f"session={SENTINEL}"})


@asynccontextmanager
async def partner() -> AsyncIterator[Partner]:
    state = Partner()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


def write_action(
    folder: Path,
    name: str,
    url: str,
    *,
    auth: dict[str, Any] | None = None,
    headers: list[dict[str, Any]] | None = None,
    query: list[dict[str, Any]] | None = None,
    dynamic: bool = False,
) -> None:
    document: dict[str, Any] = {
        "name": name,
        "endpoint": {"url": url, "method": "POST", "dynamicPath": dynamic},
        "request": {"sample": {"email": "ada@example.com"}, "variables": {"email": {"label": "Email"}}},
    }
    if headers:
        document["endpoint"]["headers"] = headers
    if query:
        document["endpoint"]["queryParameters"] = query
    if auth:
        document["authentication"] = auth
    (folder / f"{name}.json").write_text(json.dumps(document))


def standard_actions(folder: Path, base: str) -> None:
    """ok, missing, flaky and big, without authentication."""
    for name in ("ok", "missing", "flaky", "big"):
        write_action(folder, name, f"{base}/{name}")
