"""The HTTP layer: redirects, the body cap and error mapping, through both transports.

`HttpxTransport` is driven through respx; `AiohttpTransport` against aiohttp.web on loopback
(plus TLS with a client certificate, using the throwaway PKI of the auth tests).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import respx
from aiohttp import web
from auth_server import Pki, pki, server_ssl_context  # noqa: F401  (pki: a fixture)
from raw_server import RawHandler, RawServer, raw_server, read_request

from actionrt.auth.mtls import client_ssl_context
from actionrt.guard import DestinationPolicy
from actionrt.http import (
    AiohttpTransport,
    BodyTooLargeError,
    ConnectError,
    DestinationRefusedError,
    Http1Transport,
    HttpRequest,
    HttpxTransport,
    InvalidRequestError,
    NetworkError,
    TooManyRedirectsError,
    check_header_fields,
    follow_redirect,
)
from actionrt.http.redirects import Hop as _Hop

API = "https://api.example.com"


# -- follow_redirect: the rules both transports share ----------------------------------------


def hop(method: str = "POST", url: str = API + "/a", **headers: str) -> _Hop:
    return _Hop(method, url, {"Content-Type": "application/json", **headers}, b"{}")


@pytest.mark.parametrize(
    ("status", "method", "after"),
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "PUT", "GET"),
        (307, "POST", "POST"),
        (308, "PUT", "PUT"),
        (302, "PUT", "PUT"),
        (303, "HEAD", "HEAD"),
    ],
)
def test_redirect_method_rules(status: int, method: str, after: str) -> None:
    nxt = follow_redirect(hop(method), status, "/b", None)
    assert nxt.method == after and nxt.url == API + "/b"
    if after == "GET":
        assert nxt.content is None and "Content-Type" not in nxt.headers
    else:
        assert nxt.content == b"{}"


# Credentials under any name: the standard ones, an apiKey header, a customAuthorization
# tokenTarget, a constant header filled from a secret.
SECRET_HEADERS = {
    "Authorization": "Bearer t",
    "Cookie": "c=1",
    "x-api-key": "k",
    "X-Auth-Token": "tok",
    "X-Tenant-Secret": "s",
    "Idempotency-Key": "i",
}
# Headers that never carry a credential: kept across origins.
PLAIN_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip",
    "Accept-Language": "en",
    "User-Agent": "ua",
    "Charset": "utf-8",
}
# Over a real transport: Http1Transport writes its own User-Agent.
SENT_PLAIN_HEADERS = {k: v for k, v in PLAIN_HEADERS.items() if k != "User-Agent"}


@pytest.mark.parametrize(
    "target",
    [
        "https://elsewhere.example.com/b",  # host
        "http://api.example.com/a",  # scheme (a downgrade)
        "https://api.example.com:8443/a",  # port
        "//elsewhere.example.com/b",  # scheme-relative
    ],
)
def test_only_plain_headers_follow_a_redirect_to_another_origin(target: str) -> None:
    other = follow_redirect(hop(**SECRET_HEADERS, **PLAIN_HEADERS), 307, target, None)
    assert other.headers == {"Content-Type": "application/json", **PLAIN_HEADERS}


@pytest.mark.parametrize("target", ["/b", "https://API.example.com:443/b", "?page=2"])
def test_a_same_origin_redirect_keeps_every_header(target: str) -> None:
    same = follow_redirect(hop(**SECRET_HEADERS, **PLAIN_HEADERS), 307, target, None)
    assert same.headers == {"Content-Type": "application/json", **SECRET_HEADERS, **PLAIN_HEADERS}


def test_a_query_credential_does_not_follow_a_redirect() -> None:
    """The Location replaces the URL: the original query (an apiKey) is not carried over."""
    keyed = hop(url=API + "/a?appid=secret")
    assert follow_redirect(keyed, 302, "https://elsewhere.example.com/b", None).url == (
        "https://elsewhere.example.com/b"
    )
    assert follow_redirect(keyed, 302, "/b", None).url == API + "/b"


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
    answer = await httpx_transport.send(HttpRequest("POST", API + "/a", {"x-h": "v"}, b'{"a":1}'))
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
    [
        (httpx.ConnectError("refused"), ConnectError),
        (httpx.ConnectTimeout("slow"), ConnectError),
        (httpx.ReadError("reset"), NetworkError),
        (httpx.RemoteProtocolError("eof"), NetworkError),
    ],
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
            {
                "method": request.method,
                "auth": request.headers.get("Authorization"),
                "body": (await request.read()).decode(),
            }
        )

    async def bomb(request: web.Request) -> web.StreamResponse:
        # 100 kB of zeros compresses to ~100 bytes: the declared length says nothing
        return web.Response(body=gzip.compress(b"0" * 100_000), headers={"Content-Encoding": "gzip"})

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


@pytest.fixture(params=["http1", "aiohttp"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Http1Transport | AiohttpTransport]:
    """Each transport the runtime can use, allowed to call loopback."""
    policy = DestinationPolicy(True)
    chosen: Http1Transport | AiohttpTransport = (
        AiohttpTransport(policy=policy) if request.param == "aiohttp" else Http1Transport(policy=policy)
    )
    yield chosen
    await chosen.aclose()


@pytest.fixture
async def two_origins() -> AsyncIterator[tuple[str, str, list[web.Request]]]:
    """Two loopback servers (two origins: the ports differ). `first/away` redirects to the
    second's `/landed`, `first/here` to its own `/landed`; every request is recorded."""
    seen: list[web.Request] = []

    async def landed(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return web.json_response({})

    runners: list[web.AppRunner] = []
    urls: list[str] = []
    for _ in range(2):
        app = web.Application()
        app.router.add_route("*", "/landed", landed)
        app.router.add_route("*", "/away", _redirect_to(lambda: urls[1] + "/landed"))
        app.router.add_route("*", "/here", _redirect_to(lambda: "/landed"))
        runner = web.AppRunner(app)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
    yield urls[0], urls[1], seen
    for runner in runners:
        await runner.cleanup()


def _redirect_to(location: Callable[[], str]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A 307 handler; `location` is read per request (the second server's port comes later)."""

    async def redirect(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=307, headers={"Location": location()})

    return redirect


async def test_a_redirect_to_another_origin_sends_only_plain_headers(
    transport: Http1Transport | AiohttpTransport, two_origins: tuple[str, str, list[web.Request]]
) -> None:
    first, second, seen = two_origins
    headers = {"Content-Type": "application/json", **SECRET_HEADERS, **SENT_PLAIN_HEADERS}
    answer = await transport.send(HttpRequest("POST", first + "/away?appid=secret", headers, b"{}"))
    assert answer.status == 200 and answer.url == second + "/landed"
    (landed,) = seen
    assert landed.url.port == int(second.rsplit(":", 1)[1])
    assert landed.query_string == ""  # the query-string key stayed behind
    received = {name.lower() for name in landed.headers}
    assert not received & {name.lower() for name in SECRET_HEADERS}
    assert landed.headers["Accept-Language"] == "en" and landed.headers["Content-Type"] == "application/json"


async def test_a_same_origin_redirect_sends_every_header(
    transport: Http1Transport | AiohttpTransport, two_origins: tuple[str, str, list[web.Request]]
) -> None:
    first, _, seen = two_origins
    headers = {"Content-Type": "application/json", **SECRET_HEADERS, **SENT_PLAIN_HEADERS}
    answer = await transport.send(HttpRequest("POST", first + "/here", headers, b"{}"))
    assert answer.status == 200 and answer.url == first + "/landed"
    (landed,) = seen
    for name, value in SECRET_HEADERS.items():
        assert landed.headers[name] == value


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


@pytest.mark.parametrize("kind", [Http1Transport, AiohttpTransport])
async def test_a_request_can_present_a_client_certificate(
    pki: Pki,  # noqa: F811  (the fixture imported above)
    kind: type[Http1Transport] | type[AiohttpTransport],
) -> None:
    async def hello(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(part[0] for part in peer["subject"]) if peer else {}
        return web.json_response({"client": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    tls = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki, require_client_cert=True))
    await tls.start()
    url = f"https://localhost:{runner.addresses[0][1]}/"
    trusting = ssl.create_default_context(cafile=str(pki.ca_file))
    transport = kind(ssl_context=trusting)
    try:
        with pytest.raises((ConnectError, NetworkError)):
            await transport.send(HttpRequest("GET", url))  # no certificate: refused
        mutual = client_ssl_context(str(pki.client_cert), str(pki.client_key), ca_file=str(pki.ca_file))
        answer = await transport.send(HttpRequest("GET", url, ssl_context=mutual))
        assert answer.status == 200 and b'"client"' in answer.content
    finally:
        await transport.aclose()
        await runner.cleanup()


# -- Http1Transport: the default transport, against raw sockets ---------------------------------

Handler = RawHandler
Raw = RawServer


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with raw_server() as server:
        yield server


def answers(*responses: bytes, keep_open: bool = True) -> Handler:
    """Answer each request on a connection with the next response."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_request(reader)
            writer.write(response)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return handler


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


@pytest.fixture
async def http1() -> AsyncIterator[Http1Transport]:
    transport = Http1Transport(max_body=1000)
    yield transport
    await transport.aclose()


async def test_http1_writes_one_well_formed_request(raw: Raw, http1: Http1Transport) -> None:
    raw.handler = answers(OK)

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.request(reader)
        writer.write(OK)
        await reader.read()

    raw.handler = record
    answer = await http1.send(
        HttpRequest(
            "POST",
            raw.url + "/v1/x?a=1",
            {"X-Id": "r-1", "Content-Length": "999", "Host": "evil"},
            b'{"a":1}',
        )
    )
    assert (answer.status, answer.content) == (200, b"{}")
    assert answer.headers["content-type"] == "application/json"
    head, _, body = raw.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/x?a=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{raw.port}".encode() in lines and b"X-Id: r-1" in lines
    assert b"Content-Length: 7" in lines and b"Content-Length: 999" not in lines
    assert b"Host: evil" not in lines and body == b'{"a":1}'


async def test_http1_reuses_a_kept_alive_connection(raw: Raw, http1: Http1Transport) -> None:
    raw.handler = answers(OK, OK, OK)
    for _ in range(3):
        assert (await http1.send(HttpRequest("GET", raw.url + "/"))).status == 200
    assert raw.connections == 1


async def test_http1_does_not_reuse_a_closed_connection(raw: Raw, http1: Http1Transport) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    raw.handler = answers(closing, keep_open=False)
    for _ in range(2):
        assert (await http1.send(HttpRequest("GET", raw.url + "/"))).status == 200
    assert raw.connections == 2


async def test_http1_retries_once_when_a_kept_alive_connection_went_stale(
    raw: Raw, http1: Http1Transport
) -> None:
    raw.handler = answers(OK, keep_open=False)  # answers once, then hangs up silently
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).status == 200
    await asyncio.sleep(0)  # let the FIN arrive, as it would while the connection sits idle
    assert (await http1.send(HttpRequest("POST", raw.url + "/", {}, b"{}"))).status == 200
    assert raw.connections == 2


async def test_http1_reads_chunked_answers_after_an_interim_one(raw: Raw, http1: Http1Transport) -> None:
    raw.handler = answers(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n',
        OK,
    )
    answer = await http1.send(HttpRequest("GET", raw.url + "/"))
    assert (answer.status, answer.content) == (201, b'{"a":1}')
    assert answer.headers["x-a"] == "1, 2"
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).status == 200
    assert raw.connections == 1


async def test_http1_reads_until_close_without_a_length(raw: Raw, http1: Http1Transport) -> None:
    raw.handler = answers(b"HTTP/1.1 200 OK\r\n\r\n[1,2,3]", keep_open=False)
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).content == b"[1,2,3]"


async def test_http1_head_and_204_have_no_body(raw: Raw, http1: Http1Transport) -> None:
    raw.handler = answers(
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n", OK
    )
    assert (await http1.send(HttpRequest("HEAD", raw.url + "/"))).content == b""
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).status == 204
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).content == b"{}"
    assert raw.connections == 1


async def test_http1_decodes_gzip_and_caps_what_it_inflates(raw: Raw, http1: Http1Transport) -> None:
    small, bomb = gzip.compress(b'{"ok":true}'), gzip.compress(b"0" * 100_000)
    raw.handler = answers(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(small), small),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(bomb), bomb),
    )
    assert (await http1.send(HttpRequest("GET", raw.url + "/"))).content == b'{"ok":true}'
    with pytest.raises(BodyTooLargeError, match="decoded"):
        await http1.send(HttpRequest("GET", raw.url + "/"))


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + b"x" * 0x1000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"10\r\n" + b"x" * 16 + b"\r\n") * 100,
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1500,
    ],
)
async def test_http1_caps_the_body_however_it_is_framed(
    raw: Raw, http1: Http1Transport, response: bytes
) -> None:
    raw.handler = answers(response)
    with pytest.raises(BodyTooLargeError):
        await http1.send(HttpRequest("GET", raw.url + "/"))


@pytest.mark.parametrize(
    "response",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # then closes
    ],
)
async def test_http1_broken_framing_is_a_network_error(
    raw: Raw, http1: Http1Transport, response: bytes
) -> None:
    raw.handler = answers(response, keep_open=False)
    with pytest.raises(NetworkError):
        await http1.send(HttpRequest("GET", raw.url + "/"))


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "v\r\nX-Injected: 1"}, {"X-A\r\nX-B": "v"}, {"X-A": "v\rw"}, {"X-A": "v\n"}],
)
async def test_http1_refuses_line_breaks_in_headers(
    raw: Raw, http1: Http1Transport, headers: dict[str, str]
) -> None:
    raw.handler = answers(OK)
    with pytest.raises(InvalidRequestError):
        await http1.send(HttpRequest("GET", raw.url + "/", headers))
    assert raw.connections == 0  # nothing was sent


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Key": "a\x00b"},  # NUL, as from a secret in a constant header
        {"X-Key": "a\x01b"},
        {"X-Key": "a\x0bb"},
        {"X-Key": "a\x1bb"},
        {"X-Key": "a\x7fb"},
        {"X-Key": "v\r\nX-Injected: 1"},
        {"X-Key\x00": "v"},
        {"Accept": "*/*", "": "v"},
    ],
)
async def test_control_characters_in_headers_are_refused_before_sending(
    raw: Raw, transport: Http1Transport | AiohttpTransport, headers: dict[str, str]
) -> None:
    raw.handler = answers(OK)
    with pytest.raises(InvalidRequestError) as refused:
        await transport.send(HttpRequest("GET", raw.url + "/", headers))
    assert "a\x00b" not in str(refused.value)  # named, never shown
    assert raw.connections == 0  # nothing was sent


async def test_a_tab_inside_a_header_value_is_sent(
    raw: Raw, transport: Http1Transport | AiohttpTransport
) -> None:
    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.request(reader)
        writer.write(OK)
        await writer.drain()
        await reader.read()

    raw.handler = record
    answer = await transport.send(HttpRequest("GET", raw.url + "/", {"X-Key": "a\tb"}))
    assert answer.status == 200
    (sent,) = raw.requests
    assert b"X-Key: a\tb\r\n" in sent


def test_the_refusal_names_the_header_and_the_character_not_the_value() -> None:
    with pytest.raises(InvalidRequestError, match=r"'X-Key': value contains NUL$"):
        check_header_fields({"Accept": "*/*", "X-Key": "s3cret\x00"})


async def test_http1_holds_its_connection_limit(raw: Raw) -> None:
    open_now = peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(0.005)  # the server's own latency, so calls overlap
                writer.write(OK)
                await writer.drain()
        finally:
            open_now -= 1

    raw.handler = slow
    transport = Http1Transport(limit=2)
    try:
        done = await asyncio.gather(*(transport.send(HttpRequest("GET", raw.url + "/")) for _ in range(10)))
    finally:
        await transport.aclose()
    assert all(a.status == 200 for a in done) and peak == 2


async def test_http1_frees_the_slot_of_a_cancelled_call(raw: Raw) -> None:
    async def hang_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if b"/hang" in request:
            await raw.release.wait()
        writer.write(OK)
        await reader.read()

    raw.handler = hang_then_answer
    transport = Http1Transport(limit=1)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await transport.send(HttpRequest("GET", raw.url + "/hang"))
        async with asyncio.timeout(5):  # would wait forever if the slot were still taken
            answer = await transport.send(HttpRequest("GET", raw.url + "/"))
    finally:
        await transport.aclose()
    assert answer.status == 200 and raw.connections == 2


async def test_http1_resolves_through_the_policy(raw: Raw) -> None:
    raw.handler = answers(OK)
    transport = Http1Transport(policy=DestinationPolicy(False))
    try:
        with pytest.raises(DestinationRefusedError, match="loopback"):
            await transport.send(HttpRequest("GET", f"http://localhost:{raw.port}/"))
    finally:
        await transport.aclose()
    allowed = Http1Transport(policy=DestinationPolicy(True))
    try:
        answer = await allowed.send(HttpRequest("GET", f"http://localhost:{raw.port}/"))
        assert answer.status == 200
    finally:
        await allowed.aclose()


@pytest.mark.parametrize(
    "response",
    [b"HTTP/1.1 \xb2\xb2\xb2 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n"],
)
async def test_http1_non_ascii_digits_are_broken_framing(
    raw: Raw, http1: Http1Transport, response: bytes
) -> None:
    raw.handler = answers(response, keep_open=False)
    with pytest.raises(NetworkError):
        await http1.send(HttpRequest("GET", raw.url + "/"))


def test_http1_is_usable_again_on_a_new_event_loop_after_aclose() -> None:
    # What `with runtime:` then a later `invoke_sync` does: the first loop is closed by then.
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    transport = Http1Transport()
    url = f"http://127.0.0.1:{server.server_port}/x"

    async def call_then_close() -> int:
        response = await transport.send(HttpRequest("GET", url))
        await transport.aclose()
        return response.status

    try:
        assert asyncio.run(call_then_close()) == 200
        assert asyncio.run(call_then_close()) == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_http1_sends_one_user_agent(raw: Raw, http1: Http1Transport) -> None:
    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # both requests come on the one kept-alive connection
            await raw.request(reader)
            writer.write(OK)
        await reader.read()

    raw.handler = record
    await http1.send(HttpRequest("GET", raw.url + "/a", {"user-agent": "acme/1"}))
    await http1.send(HttpRequest("GET", raw.url + "/b", {}))
    first, second = (request.lower().count(b"\r\nuser-agent:") for request in raw.requests)
    assert (first, second) == (1, 1)
    assert b"user-agent: acme/1" in raw.requests[0]
