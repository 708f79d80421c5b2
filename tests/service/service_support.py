"""Helpers of the service tests: a recording loopback endpoint, the service under test, and a
valid action document to start from."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from actionrt.service import create_app
from actionrt.service.state import ServiceState

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Endpoint:
    """A loopback server (start it with `start_endpoint`) recording every request: `/token`
    answers a token to the right client, `/fail...` 500, `/missing...` 404, anything else 200."""

    received: list[Received] = field(default_factory=list)
    port: int = 0
    token_calls: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def basic_credentials(self, index: int = -1) -> str:
        """The user:password a recorded request carried in its Basic authorization."""
        header = self.received[index].headers.get("Authorization", "")
        return base64.b64decode(header.removeprefix("Basic ")).decode()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not raw:
            body: Any = None
        elif request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        self.received.append(
            Received(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if request.path == "/token":
            self.token_calls += 1
            if request.headers.get("Authorization", "") != "Basic " + base64.b64encode(b"id:right").decode():
                return web.json_response({"error": "invalid_client"}, status=401)
            return web.json_response({"access_token": "tok-1", "expires_in": 3600})
        if request.path.startswith("/fail"):
            return web.json_response({"error": "boom"}, status=500)
        if request.path.startswith("/missing"):
            return web.json_response({"error": "no such thing"}, status=404)
        return web.json_response({"messageId": "m-1", "status": "queued"})


@dataclass
class Service:
    app: Starlette
    client: httpx.AsyncClient
    store_path: Path

    @property
    def state(self) -> ServiceState:
        state: ServiceState = self.app.state.service
        return state


def make_app(tmp_path: Path, **options: Any) -> Starlette:
    options.setdefault("examples", EXAMPLES)
    options.setdefault("allow_private_network", True)
    options.setdefault("secret_key", Fernet.generate_key())
    options.setdefault("entry_points", False)
    return create_app(tmp_path / "store.db", **options)


def action(
    name: str = "notify", url: str = "https://api.example.com/v1/notify", **extra: Any
) -> dict[str, Any]:
    """A valid action document; keyword arguments replace top-level fields."""
    document: dict[str, Any] = {
        "name": name,
        "description": "Tell someone",
        "endpoint": {"url": url, "method": "POST"},
        "request": {
            "sample": {"email": "ada@example.com", "count": 1},
            "variables": {"email": {"label": "Email"}},
        },
        "response": {"sample": {"messageId": "m-0", "status": "sent"}},
    }
    document.update(extra)
    return document


async def start_endpoint() -> tuple[Endpoint, web.AppRunner]:
    server = Endpoint()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return server, runner


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8700")


CAPPING = {
    "url": "https://api.example.com/v1/*",
    "methods": ["POST"],
    "services": {"action": {"maxCallsCount": 10, "periodInMs": 1000}},
}
