"""Token calls take the runtime's own transport: its guard, its pools, its body cap, its proxy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from auth_server import RunningServer
from proxy_server import running_proxy

from actionrt.guard import DestinationPolicy
from actionrt.http import HttpRequest, HttpResponse, MockTransport
from actionrt.runtime import Runtime

OAUTH = {
    "type": "oauth2ClientCredentials",
    "tokenEndpoint": "https://auth.example.com/token",
    "clientId": "client-1",
    "clientSecret": "client-secret-1",
}


@dataclass
class Endpoints:
    """A token endpoint at /token and an action endpoint at /notify wanting its token."""

    token_answer: web.Response | None = None  # None: a good token
    token_calls: int = 0
    notified: list[str | None] = field(default_factory=list)
    port: int = 0

    def app(self) -> web.Application:
        async def token(request: web.Request) -> web.Response:
            self.token_calls += 1
            if self.token_answer is not None:
                return self.token_answer
            return web.json_response({"access_token": "t-1", "token_type": "bearer", "expires_in": 3600})

        async def notify(request: web.Request) -> web.Response:
            self.notified.append(request.headers.get("Authorization"))
            return web.json_response({"delivered": True})

        app = web.Application()
        app.router.add_post("/token", token)
        app.router.add_post("/notify", notify)
        return app


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    state = Endpoints()
    server = await RunningServer(state.app()).start()
    state.port = server.port
    yield state
    await server.stop()


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ACTIONRT_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def write_action(folder: Path, url: str, token_url: str) -> None:
    document = {
        "name": "notify",
        "endpoint": {"url": url, "method": "POST"},
        "authentication": {**OAUTH, "tokenEndpoint": token_url},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        "timeout": 5,
    }
    (folder / "notify.json").write_text(json.dumps(document))


async def invoke(folder: Path, **options: Any) -> Any:
    async with Runtime.from_path(folder, plugins=(), **options) as runtime:
        return await runtime.invoke("notify", {"email": "b@example.com"})


async def test_token_requests_go_through_the_runtimes_transport(tmp_path: Path) -> None:
    def endpoint(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/token"):
            body = {"access_token": "t-1", "token_type": "bearer", "expires_in": 3600}
            return HttpResponse(200, {}, json.dumps(body).encode(), request.url)
        return HttpResponse(200, {}, b"{}", request.url)

    transport = MockTransport(endpoint)
    write_action(tmp_path, "https://api.example.com/notify", "https://auth.example.com/token")
    result = await invoke(tmp_path, transport=transport)
    assert result.ok
    token, call = transport.requests
    assert (token.method, token.url) == ("POST", "https://auth.example.com/token")
    assert token.content is not None and b"grant_type=client_credentials" in token.content
    assert token.follow_redirects is False  # a token endpoint's answer must be the token
    assert call.headers["Authorization"] == "Bearer t-1"


async def test_token_requests_take_the_runtimes_proxy(tmp_path: Path, endpoints: Endpoints) -> None:
    async def public(host: str, port: int) -> list[tuple[str, int]]:
        return [("93.184.216.34", port)]

    base = f"http://api.example.test:{endpoints.port}"
    write_action(tmp_path, base + "/notify", base + "/token")
    async with running_proxy(hosts={"api.example.test": "127.0.0.1"}) as proxy:
        result = await invoke(tmp_path, policy=DestinationPolicy(True, resolver=public), proxy=proxy.url)
    assert result.ok and endpoints.notified == ["Bearer t-1"]
    assert proxy.forwarded == [f"POST {base}/token", f"POST {base}/notify"]


async def test_a_token_answer_over_the_body_cap_is_refused_cleanly(
    tmp_path: Path, endpoints: Endpoints
) -> None:
    endpoints.token_answer = web.json_response({"access_token": "t" * 5000, "token_type": "bearer"})
    base = f"http://127.0.0.1:{endpoints.port}"
    write_action(tmp_path, base + "/notify", base + "/token")
    result = await invoke(tmp_path, allow_private_network=True, max_body=1000)
    assert (result.status, result.error_code) == ("internalError", "auth")
    assert f"token endpoint {base}/token answered more than 1000 bytes" in (result.error or "")
    assert endpoints.token_calls == 1 and endpoints.notified == []  # final, and nothing sent


async def test_a_token_redirect_is_not_followed(tmp_path: Path, endpoints: Endpoints) -> None:
    endpoints.token_answer = web.Response(status=307, headers={"Location": "https://elsewhere.example/"})
    base = f"http://127.0.0.1:{endpoints.port}"
    write_action(tmp_path, base + "/notify", base + "/token")
    result = await invoke(tmp_path, allow_private_network=True)
    assert result.error_code == "auth" and "answered 307" in (result.error or "")
    assert endpoints.notified == []


async def test_a_private_token_endpoint_is_refused_by_the_guard_unless_allowed(
    tmp_path: Path, endpoints: Endpoints
) -> None:
    async def private(host: str, port: int) -> list[tuple[str, int]]:
        return [("10.0.0.7", port)]

    write_action(tmp_path, "https://api.example.com/notify", "https://auth.internal.test/token")
    result = await invoke(tmp_path, policy=DestinationPolicy(False, resolver=private))
    assert result.error_code == "auth"
    assert "token endpoint https://auth.internal.test/token refused: " in (result.error or "")
    assert "10.0.0.7" in (result.error or "")
    write_action(tmp_path, "https://api.example.com/notify", "http://localhost/token")  # real DNS
    refused = await invoke(tmp_path, allow_private_network=False)
    assert refused.error_code == "auth" and "token endpoint http://localhost/token refused" in (
        refused.error or ""
    )
    base = f"http://127.0.0.1:{endpoints.port}"
    write_action(tmp_path, base + "/notify", base + "/token")
    allowed = await invoke(tmp_path, allow_private_network=True)
    assert allowed.ok and endpoints.token_calls == 1 and endpoints.notified == ["Bearer t-1"]
