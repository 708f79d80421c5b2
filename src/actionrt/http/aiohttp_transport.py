"""A transport over one aiohttp session: the drop-in alternative to `Http1Transport`."""

from __future__ import annotations

import socket
import ssl
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from actionrt.http.errors import (
    BodyTooLargeError,
    ConnectError,
    DestinationRefusedError,
    NetworkError,
    TooManyRedirectsError,
    TransportError,
)
from actionrt.http.headers import check_header_fields
from actionrt.http.proxy import Proxy, ProxyRules, proxy_addresses, proxy_refusal
from actionrt.http.redirects import REDIRECT_STATUSES, Hop, follow_redirect, host_of
from actionrt.http.types import (
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_BODY,
    MAX_REDIRECTS,
    DestinationCheck,
    HttpRequest,
    HttpResponse,
    default_ssl_context,
)


class AiohttpTransport:
    """One aiohttp session with a bounded, keep-alive connection pool.

    Redirects are followed here (at most `MAX_REDIRECTS`), each target checked by `policy`;
    DNS answers go through `resolver` (by default `PolicyResolver(policy)`, which refuses
    private addresses after resolution) and are cached by the connector, so a call on a warm
    pool makes no DNS lookup. No cookies are kept: calls for different customers must never
    share state.

    `proxy` and `trust_env` choose a forward proxy as `Http1Transport` does, carried by
    aiohttp's own proxy support (absolute-form, CONNECT); the origin's addresses are checked
    by `policy` before each proxied request, the proxy's are not (it is the operator's).
    """

    reports_writes = True  # sets `HttpRequest.written` when the request goes out

    def __init__(
        self,
        *,
        policy: DestinationCheck | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        limit: int = DEFAULT_CONNECTION_LIMIT * 10,
        limit_per_host: int = DEFAULT_CONNECTION_LIMIT,
        ssl_context: ssl.SSLContext | None = None,
        resolver: AbstractResolver | None = None,
        dns_cache_seconds: int = 60,
        proxy: ProxyRules | Proxy | str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.policy = policy
        self.proxies = proxy if isinstance(proxy, ProxyRules) else ProxyRules(proxy, trust_env=trust_env)
        self.max_body = max_body
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._ssl_context = ssl_context
        self._resolver = resolver
        self._dns_cache_seconds = dns_cache_seconds
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session and its pool (needs a running event loop); idempotent."""
        self._ensure_session()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is not None and not self._session.closed:
            return self._session
        resolver = self._resolver
        if resolver is None and self.policy is not None:
            resolver = PolicyResolver(self.policy, exempt=self.proxies.hosts())
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            ssl=self._ssl_context or default_ssl_context(),
            resolver=resolver,
            ttl_dns_cache=self._dns_cache_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trace_configs=[_WRITTEN],
            timeout=aiohttp.ClientTimeout(total=None),  # the engine's deadline cancels sends
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
        )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        session = self._session
        if session is None:
            session = self._ensure_session()
        method, url = request.method, request.url
        headers, content = request.headers, request.content
        tls: ssl.SSLContext | bool = request.ssl_context or True  # True: the connector's context
        check_header_fields(headers)  # before anything is sent; redirects only drop headers
        for _ in range(MAX_REDIRECTS + 1):
            # Until aiohttp's trace hooks say otherwise (queued for a connection, headers sent).
            request.waiting_for = f"still connecting to {host_of(url)}"
            proxy = await self._proxy_for(url) if self.proxies.active else None
            sent_headers, proxy_headers = headers, None
            if proxy is not None and proxy.authorization is not None:
                # aiohttp sends `proxy_headers` with CONNECT only: an absolute-form request
                # carries the credentials among its own headers.
                if url[:6].lower() == "https:":
                    proxy_headers = {"Proxy-Authorization": proxy.authorization}
                else:
                    sent_headers = {**headers, "Proxy-Authorization": proxy.authorization}
            try:
                async with session.request(
                    method,
                    url,
                    headers=sent_headers,
                    data=content,
                    allow_redirects=False,
                    ssl=tls,
                    trace_request_ctx=request,
                    proxy=None if proxy is None else f"http://{proxy.shown}",
                    proxy_headers=proxy_headers,
                ) as answer:
                    status = answer.status
                    if status == 407 and proxy is not None and not url.lower().startswith("https:"):
                        raise proxy_refusal(proxy, 407, f"a request to {host_of(url)}")
                    if status in REDIRECT_STATUSES and request.follow_redirects:
                        location = answer.headers.get("Location")
                        if location:
                            hop = follow_redirect(
                                Hop(method, url, headers, content), status, location, self.policy
                            )
                            method, url, headers, content = (hop.method, hop.url, hop.headers, hop.content)
                            continue
                    body = await self._read_body(answer)
                    return HttpResponse(status, answer.headers, body, url)
            except TransportError:
                raise
            except aiohttp.ClientHttpProxyError as exc:  # the answer to CONNECT
                assert proxy is not None
                if exc.status in (502, 503, 504):
                    raise ConnectError(f"the proxy {proxy.shown} could not reach {host_of(url)}") from None
                raise proxy_refusal(proxy, exc.status, f"CONNECT to {host_of(url)}") from None
            except aiohttp.ClientProxyConnectionError as exc:
                assert proxy is not None
                raise ConnectError(f"cannot connect to the proxy {proxy.shown}: {_reason(exc)}") from None
            except aiohttp.ClientConnectorError as exc:
                raise ConnectError(f"cannot connect to {host_of(url)}: {_reason(exc)}") from exc
            except aiohttp.InvalidURL as exc:
                raise ConnectError(f"invalid URL for {host_of(url)}") from exc
            except aiohttp.ServerDisconnectedError as exc:
                raise NetworkError(f"{host_of(url)} closed the connection") from exc
            except aiohttp.ClientPayloadError as exc:
                raise NetworkError(f"{host_of(url)} sent an incomplete body") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise NetworkError(f"connection to {host_of(url)} broke: {_reason(exc)}") from exc
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {host_of(url)}")

    async def _proxy_for(self, url: str) -> Proxy | None:
        """The proxy of `url`'s origin, once the policy has checked the origin's addresses
        (the proxy connects to them; aiohttp never resolves them here)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            host, port = parts.hostname or "", parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise ConnectError(f"invalid URL for {host_of(url)}") from None
        proxy = self.proxies.select(scheme, host, port)
        if proxy is not None and self.policy is not None:
            await self.policy.resolve(host, port)
        return proxy

    async def _read_body(self, answer: aiohttp.ClientResponse) -> bytes:
        max_body = self.max_body
        length = answer.content_length
        # A declared length is trustworthy only without Content-Encoding: a compressed body
        # can inflate far past it, so those are counted chunk by chunk after decoding.
        if length is not None and "Content-Encoding" not in answer.headers:
            if length > max_body:
                raise BodyTooLargeError(f"response body of {length} bytes exceeds {max_body}")
            return await answer.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_any():
            size += len(chunk)
            if size > max_body:
                raise BodyTooLargeError(f"response body exceeds {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _headers_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    request = context.trace_request_ctx
    if isinstance(request, HttpRequest):
        request.written = True  # from here the endpoint may act on it


async def _queued(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceConnectionQueuedStartParams,
) -> None:
    request = context.trace_request_ctx
    if isinstance(request, HttpRequest):
        request.waiting_for = f"no connection free to {host_of(request.url)}"


async def _dequeued(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceConnectionQueuedEndParams,
) -> None:
    request = context.trace_request_ctx
    if isinstance(request, HttpRequest):
        request.waiting_for = f"still connecting to {host_of(request.url)}"


_WRITTEN = aiohttp.TraceConfig()
_WRITTEN.on_request_headers_sent.append(_headers_sent)
_WRITTEN.on_connection_queued_start.append(_queued)
_WRITTEN.on_connection_queued_end.append(_dequeued)
_WRITTEN.freeze()


class PolicyResolver(AbstractResolver):
    """aiohttp resolver answering only the addresses the policy allows, so aiohttp connects
    to a checked address. aiohttp skips resolvers for IP-literal hosts: `check_url` guards those.
    """

    def __init__(self, policy: DestinationCheck, *, exempt: frozenset[str] = frozenset()) -> None:
        self.policy = policy
        self.exempt = exempt  # the operator's proxies: resolved, not checked

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host in self.exempt:
            addresses = await proxy_addresses(Proxy(host, port))
        else:
            addresses = await self.policy.resolve(host, port)
        results: list[ResolveResult] = []
        for address in addresses:
            addr_family = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (socket.AF_UNSPEC, addr_family):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=addr_family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise DestinationRefusedError(f"{host!r} has no allowed address of the wanted family")
        return results

    async def close(self) -> None:
        return None


def _reason(exc: BaseException) -> str:
    """A short reason that cannot carry a URL: the OS error text, else the exception type."""
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
