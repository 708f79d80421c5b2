"""A stand-in for third-party APIs on loopback: token endpoints and action endpoints.

Used by `actionrt demo` and by tests. It answers every action endpoint with the action's response
sample, injects a configurable share of transient failures (503, then success on retry), counts
requests per path and token requests, and checks bearer tokens.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_PATHS = ("/token", "/login")


@dataclass
class StandIn:
    """The stand-in server: `await start()`, its `base_url`, then `await stop()`."""

    failure_rate: float = 0.0
    seed: int = 7
    port: int = 0  # 0: an ephemeral port, read back from `base_url`
    responses: dict[str, Any] = field(default_factory=dict)  # path prefix -> JSON body
    requests: Counter[str] = field(default_factory=Counter)
    token_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    _tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._random = random.Random(self.seed)
        app = web.Application()
        for path in TOKEN_PATHS:
            app.router.add_route("*", path, self._token)
        app.router.add_route("*", "/{tail:.*}", self._action)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        await request.read()
        self.token_requests += 1
        token = secrets.token_urlsafe(16)
        self._tokens.add(token)
        body = {
            "access_token": token,
            "token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "expiryDuration": 60,
        }
        return web.json_response(body)

    def _authorised(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ") in self._tokens
        header_token = request.headers.get("x-auth-token")
        if header_token is not None:
            return header_token in self._tokens
        return True  # basic, API key and unauthenticated actions are accepted as they come

    async def _action(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        self.requests[path] += 1
        if not self._authorised(request):
            return self._answer(401, {"error": "invalid token"})
        if body:
            try:
                json.loads(body)
            except ValueError:
                return self._answer(400, {"error": "body is not JSON"})
        if self.failure_rate and self._random.random() < self.failure_rate:
            return self._answer(503, {"error": "temporarily unavailable"})
        for prefix, answer in self.responses.items():
            if path.startswith(prefix):
                return self._answer(200, answer)
        return self._answer(200, {"ok": True})

    def _answer(self, status: int, body: Any) -> web.Response:
        self.statuses[status] += 1
        return web.json_response(body, status=status)
