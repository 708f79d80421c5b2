"""The HTTP layer: redirects, the body cap and error mapping, through both transports.

`HttpxTransport` is driven through respx; `AiohttpTransport` against aiohttp.web on loopback
(plus TLS with a client certificate, using the throwaway PKI of the auth tests).
"""

from __future__ import annotations

import gzip
import socket
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from aiohttp import web
from auth_server import Pki, pki, server_ssl_context  # noqa: F401  (pki: a fixture)

from actionrt.auth.mtls import client_ssl_context
from actionrt.guard import DestinationPolicy
from actionrt.http import (
    AiohttpTransport,
    BodyTooLargeError,
    ConnectError,
    DestinationRefusedError,
    HttpRequest,
    HttpxTransport,
    NetworkError,
    TooManyRedirectsError,
    _Hop,
    follow_redirect,
)

API = "https://api.example.com"


# -- follow_redirect: the rules both transports share ----------------------------------------


def hop(method: str = "POST", url: str = API + "/a", **headers: str) -> _Hop:
    return _Hop(method, url, {"Content-Type": "application/json", **headers}, b"{}")


@pytest.mark.parametrize(
    ("status", "method", "after"),
    [(301, "POST", "GET"), (302, "POST", "GET"), (303, "PUT", "GET"), (307, "POST", "POST"),
     (308, "PUT", "PUT"), (302, "PUT", "PUT"), (303, "HEAD", "HEAD")],
)
def test_redirect_method_rules(status: int, method: str, after: str) -> None:
    nxt = follow_redirect(hop(method), status, "/b", None)
    assert nxt.method == after and nxt.url == API + "/b"
    if after == "GET":
        assert nxt.content is None and "Content-Type" not in nxt.headers
    else:
        assert nxt.content == b"{}"


def test_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    same = follow_redirect(hop(Authorization="Bearer t"), 307, "/b", None)
    assert same.headers["Authorization"] == "Bearer t"
    other = follow_redirect(hop(Authorization="Bearer t", Cookie="c=1"), 307,
                            "https://elsewhere.example.com/b", None)
    assert "Authorization" not in other.headers and "Cookie" not in other.headers
    downgraded = follow_redirect(hop(Authorization="Bearer t"), 307, "http://api.example.com/a",
                                 None)
    assert "Authorization" not in downgraded.headers


def test_redirect_targets_are_checked_by_the_policy() -> None:
    policy = DestinationPolicy(False)
    with pytest.raises(DestinationRefusedError, match="IP address"):
        follow_redirect(hop(), 302, "http://169.254.169.254/latest/meta-data", policy)
    with pytest.raises(DestinationRefusedError, match="port"):
        follow_redirect(hop(), 302, "https://api.example.com:8443/", policy)
    with pytest.raises(DestinationRefusedError, match="non-HTTP"):
        follow_redirect(hop(), 302, "file:///etc/passwd", None)


# -- HttpxTransport through respx ---------------------------------------------------------------


@pytest.fixture
async def httpx_transport() -> AsyncIterator[HttpxTransport]:
    transport = HttpxTransport(httpx.AsyncClient(), max_body=1000)
    yield transport
    await transport.aclose()


@respx.mock
async def test_httpx_transport_sends_and_answers(httpx_transport: HttpxTransport) -> None:
    route = respx.post(API + "/a").respond(201, json={"id": 1}, headers={"X-Rate": "9"})
    answer = await httpx_transport.send(
        HttpRequest("POST", API + "/a", {"x-h": "v"}, b'{"a":1}')
    )
    assert (answer.status, answer.content, answer.url) == (201, b'{"id":1}', API + "/a")
    assert answer.headers["x-rate"] == "9"
    sent = route.calls.last.request
    assert sent.headers["x-h"] == "v" and sent.content == b'{"a":1}'


@respx.mock
async def test_httpx_transport_follows_redirects_up_to_five(
    httpx_transport: HttpxTransport,
) -> None:
    respx.get(API + "/loop").respond(302, headers={"Location": "/loop"})
    with pytest.raises(TooManyRedirectsError):
        await httpx_transport.send(HttpRequest("GET", API + "/loop"))
    assert respx.calls.call_count == 6
    respx.get(API + "/from").respond(303, headers={"Location": API + "/to"})
    respx.get(API + "/to").respond(200, json={"ok": True})
    answer = await httpx_transport.send(HttpRequest("GET", API + "/from"))
    assert answer.status == 200 and answer.url == API + "/to"


@respx.mock
async def test_httpx_transport_caps_the_body(httpx_transport: HttpxTransport) -> None:
    respx.get(API + "/big").respond(200, content=b"x" * 1001)
    respx.get(API + "/fits").respond(200, content=b"x" * 1000)
    with pytest.raises(BodyTooLargeError):
        await httpx_transport.send(HttpRequest("GET", API + "/big"))
    assert len((await httpx_transport.send(HttpRequest("GET", API + "/fits"))).content) == 1000


@respx.mock
@pytest.mark.parametrize(
    ("raised", "mapped"),
    [(httpx.ConnectError("refused"), ConnectError), (httpx.ConnectTimeout("slow"), ConnectError),
     (httpx.ReadError("reset"), NetworkError), (httpx.RemoteProtocolError("eof"), NetworkError)],
)
async def test_httpx_errors_are_mapped(
    httpx_transport: HttpxTransport, raised: Exception, mapped: type[Exception]
) -> None:
    respx.get(API + "/a?key=s3cret").mock(side_effect=raised)
    with pytest.raises(mapped) as caught:
        await httpx_transport.send(HttpRequest("GET", API + "/a?key=s3cret"))
    assert "s3cret" not in str(caught.value) and "api.example.com" in str(caught.value)


# -- AiohttpTransport against loopback ---------------------------------------------------------


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application()

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"method": request.method, "auth": request.headers.get("Authorization"),
             "body": (await request.read()).decode()}
        )

    async def bomb(request: web.Request) -> web.StreamResponse:
        # 100 kB of zeros compresses to ~100 bytes: the declared length says nothing
        return web.Response(body=gzip.compress(b"0" * 100_000),
                            headers={"Content-Encoding": "gzip"})

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        port = request.url.port
        raise web.HTTPTemporaryRedirect(f"http://localhost:{port}/echo")

    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/bomb", bomb)
    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_aiohttp_transport_round_trip_and_redirect_stripping(site: str) -> None:
    transport = AiohttpTransport(policy=DestinationPolicy(True))
    try:
        answer = await transport.send(
            HttpRequest("PUT", site + "/echo", {"Authorization": "Bearer t"}, b"hi")
        )
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert b'"auth": "Bearer t"' in answer.content and b'"body": "hi"' in answer.content
        moved = await transport.send(
            HttpRequest("POST", site + "/elsewhere", {"Authorization": "Bearer t"}, b"hi")
        )
        assert moved.url.startswith("http://localhost:")
        assert b'"auth": null' in moved.content and b'"method": "POST"' in moved.content
    finally:
        await transport.aclose()


async def test_aiohttp_transport_caps_a_compressed_body_after_decoding(site: str) -> None:
    transport = AiohttpTransport(max_body=10_000)
    try:
        with pytest.raises(BodyTooLargeError):
            await transport.send(HttpRequest("GET", site + "/bomb"))
    finally:
        await transport.aclose()


async def test_aiohttp_transport_maps_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpTransport()
    try:
        with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
            await transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/?key=s3cret"))
    finally:
        await transport.aclose()


async def test_aiohttp_transport_refuses_private_addresses_after_resolution(site: str) -> None:
    transport = AiohttpTransport(policy=DestinationPolicy(False))
    port = site.rsplit(":", 1)[1]
    try:
        with pytest.raises(DestinationRefusedError, match="loopback"):
            await transport.send(HttpRequest("GET", f"http://localhost:{port}/echo"))
    finally:
        await transport.aclose()


async def test_a_request_can_present_a_client_certificate(pki: Pki) -> None:  # noqa: F811
    async def hello(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(part[0] for part in peer["subject"]) if peer else {}
        return web.json_response({"client": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    tls = web.TCPSite(runner, "127.0.0.1", 0,
                      ssl_context=server_ssl_context(pki, require_client_cert=True))
    await tls.start()
    url = f"https://localhost:{runner.addresses[0][1]}/"
    trusting = ssl.create_default_context(cafile=str(pki.ca_file))
    transport = AiohttpTransport(ssl_context=trusting)
    try:
        with pytest.raises((ConnectError, NetworkError)):
            await transport.send(HttpRequest("GET", url))  # no certificate: refused
        mutual = client_ssl_context(str(pki.client_cert), str(pki.client_key),
                                    ca_file=str(pki.ca_file))
        answer = await transport.send(HttpRequest("GET", url, ssl_context=mutual))
        assert answer.status == 200 and b'"client"' in answer.content
    finally:
        await transport.aclose()
        await runner.cleanup()
