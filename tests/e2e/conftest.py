"""Real servers on 127.0.0.1 (port 0) for the end-to-end tests of the call path.

`server` is an aiohttp.web app answering from a per-path script and recording every request;
`raw_server` hands the test the socket itself, for resets, slow bodies and broken framing.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from raw_server import RawServer, raw_server, read_request  # noqa: F401  (re-exported)

import actionrt.runtime
from actionrt.guard import DestinationPolicy
from actionrt.http import AiohttpTransport, Http1Transport, Transport, proxy_rules
from actionrt.retry import Backoff
from actionrt.runtime import Runtime

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Retries in tests wait milliseconds, not the production 0.2 s, 0.4 s, ...
FAST_BACKOFF = Backoff(base=0.005, cap=0.05)


@pytest.fixture(autouse=True, params=["http1", "aiohttp"])
def transport_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every end-to-end test runs over both transports: the default and the aiohttp one."""
    kind: str = request.param

    def make(
        policy: DestinationPolicy,
        max_body: int,
        tls: ssl.SSLContext | None = None,
        *,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> Transport:
        proxies = proxy_rules(proxy, trust_env=trust_env)
        if kind == "aiohttp":
            return AiohttpTransport(policy=policy, max_body=max_body, ssl_context=tls, proxy=proxies)
        return Http1Transport(policy=policy, max_body=max_body, ssl_context=tls, proxy=proxies)

    monkeypatch.setattr(actionrt.runtime, "default_transport", make)
    return kind


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # loop time of arrival

    def json(self) -> Any:
        return json.loads(self.body)


def reply(
    status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None, text: str | None = None
) -> Responder:
    """A responder answering `body` as JSON (or `text` as text/plain)."""

    async def respond(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        return web.json_response(body if body is not None else {}, status=status, headers=headers)

    return respond


class ScriptedServer:
    """Answers each path from its script: responders used in order, the last one repeated."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Responder]] = {}
        self.port = 0
        self.release = asyncio.Event()  # responders that hang wait on it; set at teardown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, *responders: Responder) -> None:
        self._scripts[path] = list(responders)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                asyncio.get_running_loop().time(),
            )
        )
        script = self._scripts.get(request.path)
        if not script:
            return web.json_response({"error": "no script"}, status=599)
        responder = script.pop(0) if len(script) > 1 else script[0]
        return await responder(request)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async for scripted in _serve():
        yield scripted


@pytest.fixture
async def other_server() -> AsyncIterator[ScriptedServer]:
    """A second scripted server: another origin (its port differs), e.g. a redirect's target."""
    async for scripted in _serve():
        yield scripted


async def _serve() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    scripted.port = runner.addresses[0][1]
    yield scripted
    scripted.release.set()
    await runner.cleanup()


@pytest.fixture(name="raw_server")
async def raw_server_fixture() -> AsyncIterator[RawServer]:
    async with raw_server() as server:
        yield server


def action_file(folder: Path, url: str, **fields: Any) -> Path:
    """Write one action (JSON) calling `url`; `fields` override or extend the defaults."""
    document: dict[str, Any] = {
        "name": "loyaltyUpdate",
        "endpoint": {"url": url, "method": "POST"},
        "request": {
            "sample": {"customer": {"email": "ada@example.com", "points": 10}, "source": "j"},
            "variables": {"customer.email": {"label": "Email"}, "customer.points": {"label": "Pts"}},
        },
        "timeout": 5,
    }
    document.update(fields)
    path = folder / f"{document['name']}.json"
    path.write_text(json.dumps(document))
    return path


PARAMS = {"customer.email": "ada@example.com", "customer.points": 12}


def runtime_for(folder: Path, **options: Any) -> Runtime:
    """A runtime over `folder` allowed to call loopback, with millisecond backoff."""
    options.setdefault("allow_private_network", True)
    options.setdefault("backoff", FAST_BACKOFF)
    return Runtime.from_path(folder, plugins=(), **options)
