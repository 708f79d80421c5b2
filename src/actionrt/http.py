"""The HTTP layer: our own small request/response types and the transports that carry them.

Only this module imports an HTTP client library on the call path; everything else sees
`HttpRequest`, `HttpResponse` and the `TransportError` family.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
import httpx

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from actionrt.guard import DestinationPolicy

DEFAULT_MAX_BODY = 1 << 20
"""Response bodies larger than this (bytes) end the call with `BodyTooLargeError`."""

MAX_REDIRECTS = 5
DEFAULT_CONNECTION_LIMIT = 400
"""Open connections per transport; the reference caps `maxHttpConnections` at 400 too."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials: dropped when a redirect leaves the original origin, so a
# token meant for one host is never handed to another.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(slots=True)
class HttpRequest:
    """One request as actionrt builds it; auth schemes may add headers or query parameters.

    `ssl_context` carries per-action TLS settings (a client certificate for mutual TLS);
    None means the transport's default context (verified, TLS 1.2 or later).
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    ssl_context: ssl.SSLContext | None = None


@dataclass(slots=True)
class HttpResponse:
    """One answer: status, headers, the body read up to the size cap.

    `headers` is case-insensitive (look names up in lower case); `url` is the final URL after
    redirects.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str


class TransportError(Exception):
    """The call did not produce an HTTP answer. `kind` is a short stable word for reports.

    Messages name the host at most, never the query string (it may hold an API key).
    """

    kind = "network"


class ConnectError(TransportError):
    """The connection could not be made (refused, unreachable, DNS failure, TLS handshake)."""

    kind = "connect"


class NetworkError(TransportError):
    """The connection broke while sending or reading (reset, closed early)."""

    kind = "network"


class BodyTooLargeError(TransportError):
    """The response body is larger than the configured cap."""

    kind = "bodyTooLarge"


class DestinationRefusedError(TransportError):
    """The destination policy refused the host, the address or a redirect target."""

    kind = "destinationRefused"


class TooManyRedirectsError(TransportError):
    """More redirects than allowed."""

    kind = "tooManyRedirects"


class Transport(Protocol):
    """Carries one request and returns its answer, or raises a `TransportError`.

    Redirects are followed by the transport (each target re-checked by the destination
    policy); the body is read up to `max_body` bytes. Time limits are the caller's business:
    the engine cancels a send that outlives the call's deadline.
    """

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class UrlPolicy(Protocol):
    """The part of `actionrt.guard.DestinationPolicy` a transport needs for redirects."""

    def check_url(self, url: str) -> None:
        """Raise `DestinationRefusedError` when `url` may not be called."""


def default_ssl_context() -> ssl.SSLContext:
    """Verified TLS, 1.3 preferred with fallback to 1.2 (reference §2)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _host_of(url: str) -> str:
    """The host and port of `url`, for error messages (never the path or query)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


@dataclass(slots=True)
class _Hop:
    """What the next request of a redirect chain carries."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


def follow_redirect(hop: _Hop, status: int, location: str, policy: UrlPolicy | None) -> _Hop:
    """The request to send after a redirect answer, checked by the destination policy.

    301/302 turn a POST into a GET and 303 turns anything but HEAD into a GET (what browsers,
    httpx and requests do), dropping the body; 307/308 keep method and body. Credential
    headers are dropped when the redirect leaves the original scheme, host or port.
    """
    target = urljoin(hop.url, location)
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise DestinationRefusedError(f"redirect to a non-HTTP URL refused ({_host_of(target)})")
    if policy is not None:
        policy.check_url(target)
    method, content, headers = hop.method, hop.content, hop.headers
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if _origin(target) != _origin(hop.url):
        headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    return _Hop(method, target, headers, content)


class AiohttpTransport:
    """The hot-path transport: one aiohttp session with a bounded, keep-alive connection pool.

    Redirects are followed here (at most `MAX_REDIRECTS`), each target checked by `policy`;
    DNS answers go through `resolver` (by default `guard.GuardedResolver(policy)`, which
    refuses private addresses after resolution) and are cached by the connector, so a call
    on a warm pool makes no DNS lookup. No cookies are kept: calls for different customers
    must never share state.
    """

    def __init__(
        self,
        *,
        policy: DestinationPolicy | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        limit: int = DEFAULT_CONNECTION_LIMIT,
        limit_per_host: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        resolver: AbstractResolver | None = None,
        dns_cache_seconds: int = 60,
    ) -> None:
        self.policy = policy
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
            resolver = _guarded_resolver(self.policy)
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            ssl=self._ssl_context or default_ssl_context(),
            resolver=resolver,
            ttl_dns_cache=self._dns_cache_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
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
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with session.request(
                    method, url, headers=headers, data=content, allow_redirects=False, ssl=tls
                ) as answer:
                    status = answer.status
                    if status in REDIRECT_STATUSES:
                        location = answer.headers.get("Location")
                        if location:
                            hop = follow_redirect(
                                _Hop(method, url, headers, content), status, location, self.policy
                            )
                            method, url, headers, content = (
                                hop.method, hop.url, hop.headers, hop.content
                            )
                            continue
                    body = await self._read_body(answer)
                    return HttpResponse(status, answer.headers, body, url)
            except TransportError:
                raise
            except aiohttp.ClientConnectorError as exc:
                raise ConnectError(f"cannot connect to {_host_of(url)}: {_reason(exc)}") from exc
            except aiohttp.InvalidURL as exc:
                raise ConnectError(f"invalid URL for {_host_of(url)}") from exc
            except aiohttp.ServerDisconnectedError as exc:
                raise NetworkError(f"{_host_of(url)} closed the connection") from exc
            except aiohttp.ClientPayloadError as exc:
                raise NetworkError(f"{_host_of(url)} sent an incomplete body") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise NetworkError(f"connection to {_host_of(url)} broke: {_reason(exc)}") from exc
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {_host_of(url)}")

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


def _guarded_resolver(policy: DestinationPolicy) -> AbstractResolver:
    # Imported late: guard imports this module for DestinationRefusedError.
    from actionrt.guard import GuardedResolver

    resolver: AbstractResolver = GuardedResolver(policy)
    return resolver


def _reason(exc: BaseException) -> str:
    """A short reason that cannot carry a URL: the OS error text, else the exception type."""
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class HttpxTransport:
    """A transport over a caller's `httpx.AsyncClient`: for respx-mocked tests and connectors.

    The client's own TLS settings apply: httpx has no per-request SSL context, so a request's
    `ssl_context` is not supported here (use `AiohttpTransport` for mutual TLS).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: UrlPolicy | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.client = client
        self.policy = policy
        self.max_body = max_body

    async def send(self, request: HttpRequest) -> HttpResponse:
        hop = _Hop(request.method, request.url, request.headers, request.content)
        client = self.client
        for _ in range(MAX_REDIRECTS + 1):
            try:
                outgoing = client.build_request(
                    hop.method, hop.url, headers=hop.headers, content=hop.content
                )
                answer = await client.send(outgoing, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise ConnectError(f"cannot connect to {_host_of(hop.url)}") from exc
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise ConnectError(f"invalid URL for {_host_of(hop.url)}") from exc
            except httpx.TransportError as exc:
                raise NetworkError(f"connection to {_host_of(hop.url)} broke") from exc
            try:
                location = answer.headers.get("location")
                if answer.status_code in REDIRECT_STATUSES and location:
                    hop = follow_redirect(hop, answer.status_code, location, self.policy)
                    continue
                body = await self._read_body(answer)
                return HttpResponse(answer.status_code, answer.headers, body, hop.url)
            except httpx.TransportError as exc:
                raise NetworkError(f"connection to {_host_of(hop.url)} broke") from exc
            finally:
                await answer.aclose()
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {_host_of(hop.url)}")

    async def _read_body(self, answer: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLargeError(f"response body exceeds {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.client.aclose()
