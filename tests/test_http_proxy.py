"""Calls through a real forward proxy on loopback (tests/proxy_server.py): absolute-form for
http://, CONNECT then TLS to the origin for https://, credentials from secrets, NO_PROXY, and
the destination policy still holding for the origin."""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from auth_server import Pki, RunningServer, pki, server_ssl_context  # noqa: F401  (pki: a fixture)
from proxy_server import ForwardProxy, running_proxy

from actionrt.guard import DestinationPolicy
from actionrt.http import (
    ConnectError,
    DestinationRefusedError,
    Http1Transport,
    HttpRequest,
    Proxy,
    ProxyRefusedError,
    ProxyRules,
    default_ssl_context,
)
from actionrt.runtime import Runtime, proxy_rules

PUBLIC = "93.184.216.34"  # what the guard is told the origin names resolve to
PASSWORD = "s3cret pass:with@signs"


async def public_dns(host: str, port: int) -> list[tuple[str, int]]:
    return [(PUBLIC, port)]


async def private_dns(host: str, port: int) -> list[tuple[str, int]]:
    return [("10.0.0.7", port)]


def guard(allow_private_network: bool = False) -> DestinationPolicy:
    """The runtime's guard, told that every name is public: the proxy reaches loopback."""
    return DestinationPolicy(allow_private_network, resolver=public_dns)


def echo_app(seen: list[dict[str, Any]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        record = {
            "method": request.method,
            "path": request.path_qs,
            "host": request.headers.get("Host"),
            "proxy_authorization": request.headers.get("Proxy-Authorization"),
            "body": (await request.read()).decode(),
        }
        seen.append(record)
        return web.json_response(record)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def origin() -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = await RunningServer(echo_app(seen)).start()
    yield server.port, seen
    await server.stop()


@pytest.fixture
async def tls_origin(pki: Pki) -> AsyncIterator[tuple[int, list[str | None]]]:  # noqa: F811
    """An https origin whose certificate names localhost; records the SNI of each handshake."""
    names: list[str | None] = []
    context = server_ssl_context(pki)

    def remember(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember  # type: ignore[assignment]
    server = await RunningServer(echo_app([]), context).start()
    yield server.port, names
    await server.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with running_proxy(hosts={"api.example.test": "127.0.0.1", "wrong.example.test": "127.0.0.1"}) as p:
        yield p


@pytest.fixture
async def locked_proxy() -> AsyncIterator[ForwardProxy]:
    """A proxy that wants `user` / PASSWORD."""
    async with running_proxy(hosts={"api.example.test": "127.0.0.1"}, credentials=("user", PASSWORD)) as p:
        yield p


def with_credentials(proxy: ForwardProxy, user: str, password: str) -> str:
    from urllib.parse import quote

    return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{proxy.port}"


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


# -- http:// targets: absolute-form to the proxy ------------------------------------------------


async def test_an_http_target_goes_to_a_loopback_proxy_in_absolute_form(
    origin: tuple[int, list[dict[str, Any]]], proxy: ForwardProxy
) -> None:
    port, seen = origin
    transport = Http1Transport(policy=guard(), proxy=proxy.url)  # private networks NOT allowed
    url = f"http://api.example.test:{port}/v1/echo?x=1"
    answer = await transport.send(HttpRequest("POST", url, {"Content-Type": "text/plain"}, b"hello"))
    assert answer.status == 200
    assert proxy.forwarded == [f"POST {url}"]
    assert seen[0]["host"] == f"api.example.test:{port}" and seen[0]["body"] == "hello"
    assert seen[0]["path"] == "/v1/echo?x=1"
    await transport.aclose()


# -- https:// targets: CONNECT, then TLS with the origin ----------------------------------------


async def test_an_https_target_is_tunnelled_and_tls_is_checked_against_the_origin(
    tls_origin: tuple[int, list[str | None]],
    proxy: ForwardProxy,
    pki: Pki,  # noqa: F811
) -> None:
    port, server_names = tls_origin
    transport = Http1Transport(policy=guard(), proxy=proxy.url, ssl_context=default_ssl_context(pki.ca_file))
    for _ in range(2):
        answer = await transport.send(HttpRequest("GET", f"https://localhost:{port}/a"))
        assert answer.status == 200 and json.loads(answer.content)["host"] == f"localhost:{port}"
    assert proxy.connects == [f"localhost:{port}"]  # one tunnel, kept alive for the second call
    assert proxy.accepted == 1
    assert server_names == ["localhost"]  # SNI is the origin's name, not the proxy's
    await transport.aclose()


async def test_the_origin_certificate_must_match_the_origin_name_through_the_tunnel(
    tls_origin: tuple[int, list[str | None]],
    proxy: ForwardProxy,
    pki: Pki,  # noqa: F811
) -> None:
    port, _ = tls_origin
    transport = Http1Transport(policy=guard(), proxy=proxy.url, ssl_context=default_ssl_context(pki.ca_file))
    with pytest.raises(ConnectError) as caught:
        await transport.send(HttpRequest("GET", f"https://wrong.example.test:{port}/a"))
    assert "TLS" in str(caught.value) and "wrong.example.test" in str(caught.value)
    assert proxy.connects == [f"wrong.example.test:{port}"]  # the tunnel opened; TLS refused it
    await transport.aclose()


# -- credentials -----------------------------------------------------------------------------


async def test_proxy_credentials_are_sent_as_basic_for_both_schemes(
    origin: tuple[int, list[dict[str, Any]]],
    tls_origin: tuple[int, list[str | None]],
    locked_proxy: ForwardProxy,
    pki: Pki,  # noqa: F811
) -> None:
    transport = Http1Transport(
        policy=guard(),
        proxy=with_credentials(locked_proxy, "user", PASSWORD),
        ssl_context=default_ssl_context(pki.ca_file),
    )
    plain = await transport.send(HttpRequest("GET", f"http://api.example.test:{origin[0]}/p"))
    secure = await transport.send(HttpRequest("GET", f"https://localhost:{tls_origin[0]}/s"))
    assert (plain.status, secure.status) == (200, 200)
    expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert locked_proxy.authorizations == [expected, expected]
    await transport.aclose()


async def test_a_407_is_a_final_proxy_refusal_that_never_shows_the_credentials(
    origin: tuple[int, list[dict[str, Any]]],
    tls_origin: tuple[int, list[str | None]],
    locked_proxy: ForwardProxy,
) -> None:
    wrong = Http1Transport(policy=guard(), proxy=with_credentials(locked_proxy, "user", "not-it"))
    for url in (f"http://api.example.test:{origin[0]}/p", f"https://localhost:{tls_origin[0]}/s"):
        with pytest.raises(ProxyRefusedError) as caught:
            await wrong.send(HttpRequest("GET", url))
        message = str(caught.value)
        assert "refused the proxy credentials (407)" in message and caught.value.kind == "proxyRefused"
        assert "not-it" not in message and "user" not in message
    none = Http1Transport(policy=guard(), proxy=locked_proxy.url)
    with pytest.raises(ProxyRefusedError, match="requires credentials \\(407\\): none are configured"):
        await none.send(HttpRequest("GET", f"https://localhost:{tls_origin[0]}/s"))
    assert origin[1] == []  # nothing reached the origin
    await wrong.aclose()
    await none.aclose()


def test_a_proxy_never_shows_its_password_and_pools_tell_users_apart() -> None:
    first = Proxy.parse(f"http://user:{PASSWORD.replace('@', '%40').replace(':', '%3A')}@proxy.internal:3128")
    second = Proxy.parse("http://user:other@proxy.internal:3128")
    assert PASSWORD not in repr(first) and "proxy.internal:3128" in repr(first)
    assert first.identity != second.identity  # different users: different pools
    assert first.identity[:2] == ("proxy.internal", 3128) and PASSWORD not in str(first.identity)
    assert Proxy.parse("proxy.internal:3128").identity == Proxy.parse("http://proxy.internal:3128/").identity


async def test_pools_keep_proxied_and_direct_connections_apart(
    origin: tuple[int, list[dict[str, Any]]], proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = Http1Transport(proxy=proxy.url)  # no policy: loopback reached directly too
    await transport.send(HttpRequest("GET", f"http://127.0.0.1:{origin[0]}/direct"))
    await transport.send(HttpRequest("GET", f"http://localhost:{origin[0]}/proxied"))
    keys = {key[0]: key[3] for key in transport._pools.hosts}
    assert keys["127.0.0.1"] is None
    assert keys["localhost"] == Proxy.parse(proxy.url).identity
    assert proxy.forwarded == [f"GET http://localhost:{origin[0]}/proxied"]
    await transport.aclose()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("socks5://127.0.0.1:1080", "socks5:// proxies are not supported"),
        ("https://proxy:3128", "https:// proxies are not supported"),
        ("http://proxy:3128/path", "no path or query"),
        ("http://:3128", "has no host"),
        ("http://proxy:99999", "not a proxy URL"),
    ],
)
def test_bad_proxy_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Proxy.parse(url)


# -- choosing the proxy: explicit option, environment, NO_PROXY --------------------------------


async def test_the_environment_proxy_is_used_and_no_proxy_bypasses_it(
    origin: tuple[int, list[dict[str, Any]]], proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = origin
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "bypassed.test,.internal.test")
    rules = ProxyRules()
    assert rules.select("http", "localhost", port) is not None
    assert rules.select("http", "bypassed.test", 80) is None
    assert rules.select("http", "api.internal.test", 80) is None  # a domain suffix
    assert rules.select("https", "localhost", 443) is None  # HTTPS_PROXY is not set
    transport = Http1Transport()
    await transport.send(HttpRequest("GET", f"http://localhost:{port}/via-proxy"))
    monkeypatch.setenv("NO_PROXY", "localhost")
    bypassing = Http1Transport()
    await bypassing.send(HttpRequest("GET", f"http://localhost:{port}/direct"))
    assert proxy.forwarded == [f"GET http://localhost:{port}/via-proxy"]
    assert [record["path"] for record in seen] == ["/via-proxy", "/direct"]
    await transport.aclose()
    await bypassing.aclose()


def test_lower_case_variables_win_and_trust_env_false_ignores_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.test:1")
    monkeypatch.setenv("https_proxy", "http://lower.test:2")
    chosen = ProxyRules().select("https", "api.example.com", 443)
    assert chosen is not None and chosen.shown == "lower.test:2"
    assert ProxyRules(trust_env=False).select("https", "api.example.com", 443) is None


def test_an_explicit_proxy_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env.test:1")
    monkeypatch.setenv("NO_PROXY", "skipped.test")
    rules = ProxyRules("http://explicit.test:3128")
    for scheme in ("http", "https"):
        chosen = rules.select(scheme, "api.example.com", 443)
        assert chosen is not None and chosen.shown == "explicit.test:3128"
    assert rules.select("https", "skipped.test", 443) is None  # NO_PROXY still holds
    monkeypatch.setenv("ACTIONRT_PROXY", "http://operator.test:8080")
    chosen = proxy_rules().select("https", "api.example.com", 443)
    assert chosen is not None and chosen.shown == "operator.test:8080"


def test_proxy_credentials_come_from_the_operators_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROXY_PASSWORD", PASSWORD)
    rules = proxy_rules("http://user:{{ secrets.PROXY_PASSWORD }}@proxy.internal:3128")
    chosen = rules.select("https", "api.example.com", 443)
    assert chosen is not None
    assert chosen.authorization == "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    (tmp_path / "proxy_password").write_text("from-a-file\n")
    monkeypatch.setenv("ACTIONRT_SECRETS_DIR", str(tmp_path))
    from_file = proxy_rules("http://user:{{ secrets.file:proxy_password }}@proxy.internal:3128").explicit
    assert (
        from_file is not None
        and from_file.authorization == "Basic " + base64.b64encode(b"user:from-a-file").decode()
    )
    with pytest.raises(ValueError, match="proxy: secret 'MISSING_ONE' is not set"):
        proxy_rules("http://user:{{ secrets.MISSING_ONE }}@proxy.internal:3128")


# -- the destination policy through the proxy -----------------------------------------------


async def test_a_private_origin_is_refused_even_through_the_proxy(proxy: ForwardProxy) -> None:
    refusing = Http1Transport(policy=DestinationPolicy(False, resolver=private_dns), proxy=proxy.url)
    with pytest.raises(DestinationRefusedError, match=r"10\.0\.0\.7"):
        await refusing.send(HttpRequest("GET", "https://internal.example.test/admin"))
    real_dns = Http1Transport(policy=DestinationPolicy(False), proxy=proxy.url)
    with pytest.raises(DestinationRefusedError):
        await real_dns.send(HttpRequest("GET", "http://localhost:8080/"))
    metadata = Http1Transport(policy=DestinationPolicy(True), proxy=proxy.url)
    with pytest.raises(DestinationRefusedError, match="refused even on private networks"):
        await metadata.send(HttpRequest("GET", "http://169.254.169.254/latest/meta-data/"))
    assert proxy.accepted == 0  # the proxy was never asked
    for transport in (refusing, real_dns, metadata):
        await transport.aclose()


# -- through the runtime: proxy down, 407, secrets never shown -------------------------------


def write_action(folder: Path, url: str) -> None:
    document = {
        "name": "notify",
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        "retry": {"count": 2},
        "timeout": 5,
    }
    (folder / "notify.json").write_text(json.dumps(document))


async def test_a_proxy_that_is_down_is_a_connect_error_retried_like_a_refused_connection(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # the runtime's wait between attempts, recorded
        waits.append(seconds)

    write_action(tmp_path, "https://api.example.test/notify")  # retry: count 2
    async with Runtime.from_path(
        tmp_path, plugins=(), policy=guard(), proxy=f"http://127.0.0.1:{unused_tcp_port}", sleep=sleep
    ) as runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert (result.status, result.error_code, result.sent) == ("internalError", "connect", False)
    assert result.error is not None and f"the proxy 127.0.0.1:{unused_tcp_port}" in result.error
    assert len(waits) == 2  # both retries taken, as for a refused connection


async def test_a_runtime_call_refused_by_the_proxy_names_it_and_never_the_password(
    tmp_path: Path,
    origin: tuple[int, list[dict[str, Any]]],
    locked_proxy: ForwardProxy,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PROXY_PASSWORD", "wrong-" + PASSWORD)
    write_action(tmp_path, f"http://api.example.test:{origin[0]}/notify")
    async with Runtime.from_path(
        tmp_path,
        plugins=(),
        policy=guard(allow_private_network=True),  # a port other than 80 in the action's URL
        proxy=f"http://user:{{{{ secrets.PROXY_PASSWORD }}}}@127.0.0.1:{locked_proxy.port}",
    ) as runtime:
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    assert (result.status, result.error_class, result.error_code) == (
        "internalError",
        "error",
        "proxyRefused",
    )
    assert result.attempts == 1 and len(locked_proxy.authorizations) == 1  # final: not retried
    shown = json.dumps(result.as_json()) + caplog.text
    token = base64.b64encode(f"user:wrong-{PASSWORD}".encode()).decode()
    assert "407" in (result.error or "") and PASSWORD not in shown and token not in shown
    assert origin[1] == []


def test_a_proxy_is_refused_next_to_a_transport_of_ones_own(tmp_path: Path) -> None:
    from actionrt.http import HttpResponse, MockTransport

    write_action(tmp_path, "https://api.example.test/notify")
    with pytest.raises(ValueError, match="give your transport its own proxy"):
        Runtime.from_path(
            tmp_path,
            plugins=(),
            proxy="http://proxy.internal:3128",
            transport=MockTransport(lambda r: HttpResponse(200, {}, b"{}", r.url)),
        )


# -- serve --proxy / worker --proxy ----------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["serve", "--port", "0"], ["worker", ".", "--redis", "redis://127.0.0.1:1/0"]]
)
def test_a_bad_proxy_option_is_one_line_without_the_password(command: list[str]) -> None:
    from click.testing import CliRunner

    from actionrt.cli import app

    bad = CliRunner().invoke(app, [*command, "--proxy", "socks5://user:hunter2@proxy.internal:1080"])
    assert bad.exit_code == 2 and "--proxy: socks5:// proxies are not supported" in bad.output
    unset = CliRunner().invoke(app, [*command, "--proxy", "http://u:{{ secrets.NOT_SET_PROXY_PW }}@p:1"])
    assert unset.exit_code == 2 and "--proxy: secret 'NOT_SET_PROXY_PW' is not set" in unset.output
    assert "hunter2" not in bad.output + unset.output


def test_the_proxy_option_reaches_every_transport_of_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from actionrt.cli.proxy_option import use_proxy
    from actionrt.runtime import default_transport

    monkeypatch.setenv("PROXY_PASSWORD", PASSWORD)
    monkeypatch.setenv("ACTIONRT_PROXY", "")  # restored after the test: use_proxy sets it
    use_proxy("http://user:{{ secrets.PROXY_PASSWORD }}@proxy.internal:3128")  # sets ACTIONRT_PROXY
    transport = default_transport(DestinationPolicy(False), 1 << 20)  # as the service and fleet build it
    assert isinstance(transport, Http1Transport)
    chosen = transport.proxies.select("https", "api.example.com", 443)
    assert chosen is not None and chosen.shown == "proxy.internal:3128" and chosen.authorization is not None
    assert "{{" in os.environ["ACTIONRT_PROXY"]  # the template is handed on, never the password


# -- the aiohttp transport: the same rules over aiohttp's own proxy support -----------------


async def test_the_aiohttp_transport_carries_the_same_proxy_rules(
    origin: tuple[int, list[dict[str, Any]]],
    tls_origin: tuple[int, list[str | None]],
    locked_proxy: ForwardProxy,
    pki: Pki,  # noqa: F811
) -> None:
    from actionrt.http import AiohttpTransport

    context = default_ssl_context(pki.ca_file)
    good = AiohttpTransport(
        policy=guard(), proxy=with_credentials(locked_proxy, "user", PASSWORD), ssl_context=context
    )
    plain = await good.send(HttpRequest("GET", f"http://api.example.test:{origin[0]}/p"))
    secure = await good.send(HttpRequest("GET", f"https://localhost:{tls_origin[0]}/s"))
    assert (plain.status, secure.status) == (200, 200)
    assert locked_proxy.forwarded == [f"GET http://api.example.test:{origin[0]}/p"]
    assert locked_proxy.connects == [f"localhost:{tls_origin[0]}"] and tls_origin[1] == ["localhost"]
    wrong = AiohttpTransport(policy=guard(), proxy=with_credentials(locked_proxy, "user", "not-it"))
    for url in (f"http://api.example.test:{origin[0]}/p", f"https://localhost:{tls_origin[0]}/s"):
        with pytest.raises(ProxyRefusedError, match="refused the proxy credentials \\(407\\)") as caught:
            await wrong.send(HttpRequest("GET", url))
        assert "not-it" not in str(caught.value)
    private = AiohttpTransport(policy=DestinationPolicy(False, resolver=private_dns), proxy=locked_proxy.url)
    with pytest.raises(DestinationRefusedError, match=r"10\.0\.0\.7"):
        await private.send(HttpRequest("GET", "https://internal.example.test/admin"))
    for transport in (good, wrong, private):
        await transport.aclose()
