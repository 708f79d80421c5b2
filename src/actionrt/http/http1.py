"""The default transport: a lean HTTP/1.1 client on asyncio, pooled per host."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohappyeyeballs

from actionrt.http.errors import (
    BodyTooLargeError,
    ConnectError,
    InvalidRequestError,
    NetworkError,
    TooManyRedirectsError,
)
from actionrt.http.headers import FRAMED_CONTROL, invalid_header
from actionrt.http.pool import ConnectionPools, HostPool, PoolLimits
from actionrt.http.protocol import Answer, Http1Connection, _ProtocolError, _StaleConnection
from actionrt.http.proxy import Proxy, ProxyRules, open_tunnel, proxy_addresses, proxy_refusal
from actionrt.http.redirects import REDIRECT_STATUSES, Hop, follow_redirect, host_of
from actionrt.http.types import (
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_BODY,
    DEFAULT_TOTAL_CONNECTION_LIMIT,
    MAX_REDIRECTS,
    DestinationCheck,
    HttpRequest,
    HttpResponse,
    default_ssl_context,
)

_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)([^#]*)")
# Written by the transport itself: a caller's copy would duplicate or contradict the framing.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Through a proxy the proxy's credentials are the transport's too.
_PROXIED_HEADERS = _TRANSPORT_HEADERS | {"proxy-authorization"}
_USER_AGENT = "actionrt"
HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before the next address of a host is tried while the last one is still connecting."""


def _address_infos(addresses: list[str], port: int) -> list[aiohappyeyeballs.AddrInfoType]:
    """`getaddrinfo`-shaped entries for addresses the destination policy already allowed."""
    infos: list[aiohappyeyeballs.AddrInfoType] = []
    for address in addresses:
        if ":" in address:
            infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)))
        else:
            infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)))
    return infos


def _reason(exc: OSError) -> str:
    """A short reason that cannot carry a URL: the TLS or OS error text, else the type."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return exc.strerror or str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Origin:
    """What a URL's `scheme://host:port` means for the pool, parsed once per origin."""

    secure: bool
    host: str  # for DNS and TLS server name (IDNA-encoded, no brackets)
    port: int
    host_header: str
    proxy: Proxy | None = None
    absolute: str = ""  # `http://host:port` when the request goes to a proxy in absolute form


class Http1Transport:
    """The default transport: a lean HTTP/1.1 client on asyncio with keep-alive pooling.

    Chosen by measurement (bench/README.md): per call it costs about a third of the CPU of
    aiohttp's session API on this hardware. It speaks exactly what actions need: HTTP/1.1 (no
    pipelining), answers framed by llhttp (httptools), gzip/deflate, TLS with per-request
    contexts (mutual TLS), redirects (at most 5, each target checked by `policy`), and the body
    cap. Connections are pooled per host (`limits`: per host, in total, keepalive). DNS goes
    through `policy.resolve` (cached, private addresses refused) when a connection is opened.
    `limit` is the per-host limit, kept as a shorthand.

    `proxy` (a URL, a `Proxy` or `ProxyRules`) sends every call through that forward proxy;
    without one, `trust_env` follows `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (actionrt.http.proxy).
    The origin is still resolved and checked by `policy`; the proxy is the operator's and is not.
    """

    reports_writes = True  # sets `HttpRequest.written` when the request goes out

    def __init__(
        self,
        *,
        policy: DestinationCheck | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        limit: int = DEFAULT_CONNECTION_LIMIT,
        limits: PoolLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: float = 15.0,
        user_agent: str = _USER_AGENT,
        proxy: ProxyRules | Proxy | str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.policy = policy
        self.proxies = proxy if isinstance(proxy, ProxyRules) else ProxyRules(proxy, trust_env=trust_env)
        self.max_body = max_body
        self.limits = limits or PoolLimits(limit, max(limit, DEFAULT_TOTAL_CONNECTION_LIMIT), keepalive)
        self._ssl_context = ssl_context
        self._pools = ConnectionPools(self.limits)
        self._origins: dict[str, _Origin] = {}
        self._user_agent = user_agent

    async def open(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        method, url = request.method, request.url
        headers, content = request.headers, request.content
        for _ in range(MAX_REDIRECTS + 1):
            status, answer_headers, body = await self._exchange(request, method, url, headers, content)
            if status in REDIRECT_STATUSES and request.follow_redirects:
                location = answer_headers.get("location")
                if location:
                    hop = follow_redirect(Hop(method, url, headers, content), status, location, self.policy)
                    method, url, headers, content = hop.method, hop.url, hop.headers, hop.content
                    continue
            return HttpResponse(status, answer_headers, body, url)
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {host_of(url)}")

    def _origin(self, origin_text: str) -> _Origin:
        origin = self._origins.get(origin_text)
        if origin is not None:
            return origin
        parts = urlsplit(origin_text)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ConnectError(f"unsupported scheme {scheme!r}")
        try:
            hostname = parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            host = hostname.encode("idna").decode("ascii") if ":" not in hostname else hostname
        except (ValueError, UnicodeError):
            raise ConnectError(f"invalid URL for {host_of(origin_text)}") from None
        if not host:
            raise ConnectError("URL has no host")
        shown = f"[{host}]" if ":" in host else host
        default = 443 if scheme == "https" else 80
        host_header = shown if port == default else f"{shown}:{port}"
        proxies = self.proxies
        proxy = proxies.select(scheme, host, port) if proxies.active else None
        absolute = f"http://{host_header}" if proxy is not None and scheme == "http" else ""
        origin = _Origin(scheme == "https", host, port, host_header, proxy, absolute)
        if len(self._origins) >= 4096:
            self._origins.clear()
        self._origins[origin_text] = origin
        return origin

    def _payload(
        self,
        method: str,
        target: str,
        origin: _Origin,
        headers: dict[str, str],
        content: bytes | None,
    ) -> bytes:
        ours = _PROXIED_HEADERS if origin.absolute else _TRANSPORT_HEADERS
        kept = [f"{name}: {value}\r\n" for name, value in headers.items() if name.lower() not in ours]
        fields = "".join(kept)
        # Each field adds exactly one CR and one LF: more means a name or value carries a line
        # break and would smuggle a header or a second request in.
        lines = fields.count("\n")
        if (
            lines != len(kept)
            or fields.count("\r") != lines
            or "" in headers
            or FRAMED_CONTROL.search(fields)
        ):
            raise invalid_header(headers)
        # Ours unless the action sends its own: two User-Agent fields are refused by servers.
        agent = "" if "\nuser-agent:" in "\n" + fields.lower() else f"User-Agent: {self._user_agent}\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n{agent}{fields}"
        if origin.absolute and origin.proxy is not None and origin.proxy.authorization is not None:
            head += f"Proxy-Authorization: {origin.proxy.authorization}\r\n"
        if content is None:
            return (head + "\r\n").encode()
        return (head + f"Content-Length: {len(content)}\r\n\r\n").encode() + content

    async def _exchange(
        self,
        request: HttpRequest,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
    ) -> Answer:
        match = _ORIGIN.match(url)
        if match is None:
            raise ConnectError(f"invalid URL for {host_of(url)}")
        origin = self._origin(match.group(1))
        target = match.group(2) or "/"
        if target[0] == "?":
            target = "/" + target
        if " " in target or "\r" in target or "\n" in target:
            raise InvalidRequestError("the URL's path or query contains spaces or line breaks")
        payload = self._payload(method, origin.absolute + target, origin, headers, content)
        context = (request.ssl_context or self._default_tls()) if origin.secure else None
        pools = self._pools
        proxy = origin.proxy
        key = (origin.host, origin.port, context, None if proxy is None else proxy.identity)
        host = pools.host(key, origin.host_header)
        for fresh_only in (False, True):
            connection = await self._acquire(request, origin, host, fresh_only)
            try:
                answer = connection.exchange(payload, method == "HEAD", self.max_body)
                if not answer.done():
                    request.written = True
                result = await answer
                if result[0] == 407 and origin.absolute and proxy is not None:
                    raise proxy_refusal(proxy, 407, f"a request to {origin.host_header}")
                return result
            except _StaleConnection as exc:
                connection.close()
                if connection.exchanges > 1 and not fresh_only:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise NetworkError(f"{host_of(url)} closed the connection ({exc})") from None
            except BodyTooLargeError:
                connection.close()
                raise
            except _ProtocolError as exc:
                connection.close()
                raise NetworkError(f"{host_of(url)}: {exc}") from None
            except BaseException:
                connection.close()  # cancelled by the deadline: the answer's state is unknown
                raise
            finally:
                if connection.idle:
                    pools.give_back(host, connection)
                elif not connection.closed:
                    connection.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _default_tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    async def _acquire(
        self, request: HttpRequest, origin: _Origin, host: HostPool, fresh_only: bool
    ) -> Http1Connection:
        """An idle connection to `host`, else a new one once the host's pool has room."""
        pools = self._pools
        while True:
            if not fresh_only:
                connection = pools.take_idle(host)
                if connection is not None:
                    return connection
            if pools.reserve(host):
                request.waiting_for = f"still connecting to {origin.host_header}"
                connection = await self._connect(origin, host)
                request.waiting_for = None
                return connection
            request.waiting_for = pools.waiting_for(host)
            await pools.wait(host)
            request.waiting_for = None

    async def _connect(self, origin: _Origin, host: HostPool) -> Http1Connection:
        """A new connection in a slot `reserve` took; the slot is given back if none is made."""
        pools = self._pools
        context = host.key[2]
        proxy = origin.proxy
        try:
            addresses = [origin.host]
            if self.policy is not None:
                # Through a proxy too: the origin's addresses are checked, though the proxy
                # resolves the name again for itself.
                addresses = await self.policy.resolve(origin.host, origin.port)
            port, peer = origin.port, origin.host_header
            if proxy is not None:
                addresses, port, peer = await proxy_addresses(proxy), proxy.port, f"the proxy {proxy.shown}"
            loop = asyncio.get_running_loop()
            try:
                # Happy Eyeballs (RFC 8305): the next address is tried 250 ms after the last one
                # started, so an address that never answers costs 250 ms, not the deadline.
                sock = await aiohappyeyeballs.start_connection(
                    _address_infos(addresses, port),
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
                    interleave=1,
                )
            except OSError as exc:  # every address refused or unreachable
                raise ConnectError(f"cannot connect to {peer}: {_reason(exc)}") from None
            try:
                if proxy is not None and origin.secure:
                    shown = f"[{origin.host}]" if ":" in origin.host else origin.host
                    await open_tunnel(sock, proxy, origin.host_header, f"{shown}:{origin.port}")
                _, connection = await loop.create_connection(
                    lambda: pools.connection_for(host),
                    sock=sock,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
            except OSError as exc:  # the TLS handshake
                sock.close()
                raise ConnectError(f"cannot connect to {origin.host_header}: {_reason(exc)}") from None
            except BaseException:
                sock.close()
                raise
        except BaseException:
            pools.release(host)
            raise
        connection.track()  # its slot is freed when it closes
        return connection

    async def aclose(self) -> None:
        """Close the idle connections. The transport stays usable, on any event loop: the
        synchronous facade runs a new loop when a runtime is used again after `close()`."""
        pools = self._pools
        self._pools = ConnectionPools(self.limits)
        pools.close_all()
