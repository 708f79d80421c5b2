"""The HTTP layer: our own small request/response types and the transports that carry them.

Only this module imports an HTTP client library on the call path; everything else sees
`HttpRequest`, `HttpResponse` and the `TransportError` family. A redirect to another origin
carries only the headers of `CROSS_ORIGIN_HEADERS`: we can't know which custom header is a
credential, so every other header stays with the origin the action was written for.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast
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
# The only headers a redirect to another origin (scheme, host or port) keeps. An allow-list,
# not a deny-list of credential headers: an apiKey header (`x-api-key`), a customAuthorization
# `tokenTarget` or a constant header filled from a secret can have any name, so no list of
# credential names can be complete. These describe the payload and the wanted answer and never
# carry a credential. Same-origin redirects keep every header.
CROSS_ORIGIN_HEADERS = frozenset(
    {"content-type", "accept", "accept-encoding", "accept-language", "user-agent", "charset"}
)


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
    httpx and requests do), dropping the body; 307/308 keep method and body. When the redirect
    leaves the original scheme, host or port, only `CROSS_ORIGIN_HEADERS` are kept. The target
    URL is the Location alone (resolved against the current URL), so a query-string credential
    of the original URL never travels with it.
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
        headers = {k: v for k, v in headers.items() if k.lower() in CROSS_ORIGIN_HEADERS}
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
        check_header_fields(headers)  # before anything is sent; redirects only drop headers
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
                            method, url, headers, content = (hop.method, hop.url, hop.headers, hop.content)
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


class InvalidRequestError(TransportError):
    """The request cannot be written: a header name or value would break the framing."""

    kind = "invalidRequest"


# Any control character but tab (legal inside a value, RFC 9110 §5.5): CR and LF would smuggle
# a header or a request in, NUL and the rest are refused or cut by servers, and a value filled
# from a secret at call time was never seen by the load-time header check.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The same less CR and LF, for a head already framed with CRLF (those are counted instead).
_FRAMED_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_header_fields(headers: Mapping[str, str]) -> None:
    """Raise `InvalidRequestError` when a header name is empty or a name or value holds a
    control character other than tab; nothing may be sent then."""
    for name, value in headers.items():
        if not name or _HEADER_CONTROL.search(name) or _HEADER_CONTROL.search(value):
            raise _invalid_header(headers)


def _invalid_header(headers: Mapping[str, str]) -> InvalidRequestError:
    """The refusal naming the header and the character, never the value (it may be a secret)."""
    # Imported late: guard imports this module for DestinationRefusedError.
    from actionrt.guard import control_character

    for name, value in headers.items():
        if not name:
            return InvalidRequestError("a header name is empty")
        what = control_character(name)
        if what is not None:
            return InvalidRequestError(f"a header name contains {what}")
        what = control_character(value)
        if what is not None:
            return InvalidRequestError(f"header {name!r}: value contains {what}")
    return InvalidRequestError("a header name or value would break the framing")


# -- the lean HTTP/1.1 transport -----------------------------------------------------------------

_MAX_HEAD = 64 * 1024
_MAX_CHUNK_LINE = 4096
_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)([^#]*)")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# One header line after a line break: a token name, the colon, the value without its padding.
# (Greedy: a lazy value with a look-ahead costs four times as much per header.)
_HEADER_LINE = re.compile(r"\r\n([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*)")
# Written by the transport itself: a caller's copy would duplicate or contradict the framing.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_NO_BODY_STATUSES = frozenset({204, 304})
_USER_AGENT = "actionrt"

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE, _IDLE = range(7)


class _ProtocolError(Exception):
    """The server broke HTTP/1.1 framing."""


@dataclass(frozen=True, slots=True)
class _Origin:
    """What a URL's `scheme://host:port` means for the pool, parsed once per origin."""

    secure: bool
    host: str  # for DNS and TLS server name (IDNA-encoded, no brackets)
    port: int
    host_header: str


class _Http1Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses the answer as bytes arrive.

    The whole answer is buffered (bounded by `max_body`); the sender awaits one future per
    exchange. Anything unexpected — bytes while idle, broken framing — closes the connection.
    """

    def __init__(self, pool: _Http1Pool, key: tuple[str, int, ssl.SSLContext | None]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self.exchanges = 0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._state = _IDLE
        self._received = False
        self._head_only = False
        self._max_body = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._left = 0
        self._chunks: list[bytes] = []
        self._size = 0

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not subclasses of asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.reusable = False  # bytes nobody asked for: the framing is lost
            self.close()
            return
        self._received = True
        self._buffer += data
        try:
            self._advance()
        except (_ProtocolError, BodyTooLargeError) as exc:
            self._fail(exc)
        except Exception as exc:  # a parser bug must fail this call, not hang it to its deadline
            self._fail(_ProtocolError(f"unreadable answer ({type(exc).__name__})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._state == _UNTIL_CLOSE and exc is None:
            try:
                self._finish(bytes(self._buffer))
            except (_ProtocolError, BodyTooLargeError) as failure:
                waiter.set_exception(failure)
            return
        if exc is not None and not self._received:
            error: Exception = _StaleConnection(str(exc))
        elif not self._received:
            error = _StaleConnection("closed before answering")
        else:
            error = _ProtocolError("closed the connection in the middle of the answer")
        waiter.set_exception(error)

    # -- one exchange -------------------------------------------------------------------------

    def exchange(
        self, payload: bytes, head_only: bool, max_body: int
    ) -> asyncio.Future[tuple[int, dict[str, str], bytes]]:
        assert self.transport is not None
        waiter = self._waiter = self.pool.loop.create_future()
        if self.closed or self.transport.is_closing():
            # The server hung up before we wrote: a write now would vanish and leave the
            # waiter pending until the deadline.
            waiter.set_exception(_StaleConnection("closed before the request was sent"))
            return waiter
        self._state = _HEAD
        self._received = False
        self._head_only = head_only
        self._max_body = max_body
        self.exchanges += 1
        self.transport.write(payload)
        return waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.pool.forget(self)

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _finish(self, body: bytes) -> None:
        headers = self._headers
        encoding = headers.get("content-encoding")
        if encoding is not None and body:
            body = _decode(body, encoding.strip().lower(), self._max_body)
        self._state = _IDLE
        if self._buffer:  # more than one answer: we never pipeline
            self.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, headers, body))

    def _advance(self) -> None:
        buffer = self._buffer
        while True:
            state = self._state
            if state == _HEAD:
                if not self._parse_head():
                    return
            elif state == _LENGTH:
                if len(buffer) < self._left:
                    return
                body = bytes(buffer[: self._left])
                del buffer[: self._left]
                self._finish(body)
                return
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_CHUNK_LINE:
                        raise _ProtocolError("chunk size line too long")
                    return
                digits = bytes(buffer[:end]).split(b";", 1)[0].strip()
                if not _HEX.fullmatch(digits):
                    raise _ProtocolError("bad chunk size")
                del buffer[: end + 2]
                size = int(digits, 16)
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._size += size
                    if self._size > self._max_body:
                        raise BodyTooLargeError(f"response body exceeds {self._max_body} bytes")
                    self._left = size
                    self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                left = self._left
                if len(buffer) < left + 2:
                    return
                if buffer[left : left + 2] != b"\r\n":
                    raise _ProtocolError("chunk not followed by CRLF")
                self._chunks.append(bytes(buffer[:left]))
                del buffer[: left + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish(b"".join(self._chunks))
                    return
            elif state == _UNTIL_CLOSE:
                if len(buffer) > self._max_body:
                    raise BodyTooLargeError(f"response body exceeds {self._max_body} bytes")
                return
            else:
                return

    def _parse_head(self) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                raise _ProtocolError("response head larger than 64 KiB")
            return False
        head = buffer[:end].decode("latin-1")
        del buffer[: end + 4]
        line_end = head.find("\r\n")
        line = head if line_end < 0 else head[:line_end]
        code = line[9:12]
        if line[:7] != "HTTP/1." or line[8:9] != " " or not (code.isascii() and code.isdigit()):
            raise _ProtocolError("not an HTTP/1.x status line")
        status = int(code)
        fields = _HEADER_LINE.findall(head, len(line))
        if len(fields) != head.count("\r\n"):
            raise _ProtocolError("malformed header line")
        headers = {name.lower(): value.rstrip(" \t") for name, value in fields}
        if len(headers) != len(fields):  # a repeated field: its values are joined
            headers = {}
            for name, value in fields:
                key, value = name.lower(), value.rstrip(" \t")
                headers[key] = value if key not in headers else f"{headers[key]}, {value}"
        if status < 200:
            if status == 101:
                raise _ProtocolError("unexpected protocol switch")
            return True  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self._status = status
        self._headers = headers
        if line[7:8] != "1" or "close" in headers.get("connection", "").lower():
            self.reusable = False
        self._chunks = []
        self._size = 0
        if self._head_only or status in _NO_BODY_STATUSES:
            self._left = 0
            self._state = _LENGTH
            return True
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
                self._state = _UNTIL_CLOSE
                self.reusable = False
            else:
                self._state = _CHUNK_SIZE
                if "content-length" in headers:  # RFC 9112 §6.3: ambiguous, do not reuse
                    self.reusable = False
            return True
        declared = headers.get("content-length")
        if declared is None:
            self._state = _UNTIL_CLOSE
            self.reusable = False
            return True
        if not (declared.isascii() and declared.isdigit()):
            lengths = {part.strip() for part in declared.split(",")}  # "5, 5" is allowed
            declared = lengths.pop() if len(lengths) == 1 else ""
            if not (declared.isascii() and declared.isdigit()):
                raise _ProtocolError("bad Content-Length")
        self._left = int(declared)
        if self._left > self._max_body:
            raise BodyTooLargeError(f"response body of {self._left} bytes exceeds {self._max_body}")
        self._state = _LENGTH
        return True


class _StaleConnection(_ProtocolError):
    """A connection died before a single byte of the answer: safe to try a fresh one once."""


def _decode(body: bytes, encoding: str, max_body: int) -> bytes:
    """Undo gzip/deflate, never inflating past `max_body`; other codings are left as sent."""
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        return body
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, max_body + 1)
    except zlib.error as exc:
        raise _ProtocolError(f"cannot decode {encoding} body") from exc
    if len(plain) > max_body or inflater.unconsumed_tail:
        raise BodyTooLargeError(f"response body exceeds {max_body} bytes once decoded")
    return plain


class _Http1Pool:
    """Keep-alive connections by (host, port, TLS context), at most `limit` open in total.

    Idle connections are reused newest first; one idle longer than `keepalive` is closed
    instead (servers close theirs, and a reused dead one costs an attempt). At the limit, a
    call waits for a connection to come back (first come, first served).
    """

    def __init__(self, limit: int, keepalive: float) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self.open = 0
        self.idle: dict[tuple[str, int, ssl.SSLContext | None], list[_Http1Connection]] = {}
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.counted: set[_Http1Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def take_idle(self, key: tuple[str, int, ssl.SSLContext | None]) -> _Http1Connection | None:
        idle = self.idle.get(key)
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if (
                not connection.closed
                and transport is not None
                and not transport.is_closing()
                and now - connection.idle_since < self.keepalive
            ):
                return connection
            connection.close()
        return None

    def forget(self, connection: _Http1Connection) -> None:
        """A connection closed: its slot is free (counted once however often it is called)."""
        if connection in self.counted:
            self.counted.discard(connection)
            self.open -= 1
            self._wake()

    def give_back(self, connection: _Http1Connection) -> None:
        if connection.closed or not connection.reusable:
            connection.close()
            return
        connection.idle_since = self.loop.time()
        self.idle.setdefault(connection.key, []).append(connection)
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def evict_idle(self) -> bool:
        """Close the longest-idle open connection of any host to free a slot; False if none."""
        oldest: _Http1Connection | None = None
        for connections in self.idle.values():
            connections[:] = [c for c in connections if not c.closed]
            if connections and (oldest is None or connections[0].idle_since < oldest.idle_since):
                oldest = connections[0]
        if oldest is None:
            return False
        self.idle[oldest.key].remove(oldest)
        oldest.close()
        return True

    async def wait(self) -> None:
        """Wait until a connection comes back or closes (first come, first served)."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # pass the wake-up on
            raise

    def close_all(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()


class Http1Transport:
    """The default transport: a lean HTTP/1.1 client on asyncio with keep-alive pooling.

    Chosen by measurement (bench/README.md): per call it costs about a third of the CPU of
    aiohttp's session API on this hardware, which is what lets one process pass 5,000 calls/s.
    It speaks exactly what actions need: HTTP/1.1 (no pipelining), Content-Length and chunked
    answers, gzip/deflate, TLS with per-request contexts (mutual TLS), redirects (at most 5,
    each target checked by `policy`), and the body cap. DNS goes through `policy.resolve`
    (cached, private addresses refused) and happens only when a connection is opened.
    """

    def __init__(
        self,
        *,
        policy: DestinationPolicy | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        limit: int = DEFAULT_CONNECTION_LIMIT,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: float = 15.0,
        user_agent: str = _USER_AGENT,
    ) -> None:
        self.policy = policy
        self.max_body = max_body
        self._ssl_context = ssl_context
        self._pool = _Http1Pool(limit, keepalive)
        self._origins: dict[str, _Origin] = {}
        self._user_agent = user_agent

    async def open(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        method, url = request.method, request.url
        headers, content = request.headers, request.content
        tls = request.ssl_context
        for _ in range(MAX_REDIRECTS + 1):
            status, answer_headers, body = await self._exchange(method, url, headers, content, tls)
            if status in REDIRECT_STATUSES:
                location = answer_headers.get("location")
                if location:
                    hop = follow_redirect(_Hop(method, url, headers, content), status, location, self.policy)
                    method, url, headers, content = hop.method, hop.url, hop.headers, hop.content
                    continue
            return HttpResponse(status, answer_headers, body, url)
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {_host_of(url)}")

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
            raise ConnectError(f"invalid URL for {_host_of(origin_text)}") from None
        if not host:
            raise ConnectError("URL has no host")
        shown = f"[{host}]" if ":" in host else host
        default = 443 if scheme == "https" else 80
        host_header = shown if port == default else f"{shown}:{port}"
        origin = _Origin(scheme == "https", host, port, host_header)
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
        kept = [
            f"{name}: {value}\r\n"
            for name, value in headers.items()
            if name.lower() not in _TRANSPORT_HEADERS
        ]
        fields = "".join(kept)
        # Each field adds exactly one CR and one LF: more means a name or value carries a line
        # break and would smuggle a header or a second request in.
        lines = fields.count("\n")
        if (
            lines != len(kept)
            or fields.count("\r") != lines
            or "" in headers
            or _FRAMED_CONTROL.search(fields)
        ):
            raise _invalid_header(headers)
        # Ours unless the action sends its own: two User-Agent fields are refused by servers.
        agent = "" if "\nuser-agent:" in "\n" + fields.lower() else f"User-Agent: {self._user_agent}\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n{agent}{fields}"
        if content is None:
            return (head + "\r\n").encode()
        return (head + f"Content-Length: {len(content)}\r\n\r\n").encode() + content

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        tls: ssl.SSLContext | None,
    ) -> tuple[int, dict[str, str], bytes]:
        match = _ORIGIN.match(url)
        if match is None:
            raise ConnectError(f"invalid URL for {_host_of(url)}")
        origin = self._origin(match.group(1))
        target = match.group(2) or "/"
        if target[0] == "?":
            target = "/" + target
        if " " in target or "\r" in target or "\n" in target:
            raise InvalidRequestError("the URL's path or query contains spaces or line breaks")
        payload = self._payload(method, target, origin, headers, content)
        context = (tls or self._default_tls()) if origin.secure else None
        key = (origin.host, origin.port, context)
        pool = self._pool
        for fresh_only in (False, True):
            connection = await self._acquire(origin, key, context, fresh_only)
            try:
                return await connection.exchange(payload, method == "HEAD", self.max_body)
            except _StaleConnection as exc:
                connection.close()
                if connection.exchanges > 1 and not fresh_only:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise NetworkError(f"{_host_of(url)} closed the connection ({exc})") from None
            except BodyTooLargeError:
                connection.close()
                raise
            except _ProtocolError as exc:
                connection.close()
                raise NetworkError(f"{_host_of(url)}: {exc}") from None
            except BaseException:
                connection.close()  # cancelled by the deadline: the answer's state is unknown
                raise
            finally:
                if not connection.closed and connection.reusable and connection._state == _IDLE:
                    pool.give_back(connection)
                elif not connection.closed:
                    connection.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _default_tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    async def _acquire(
        self,
        origin: _Origin,
        key: tuple[str, int, ssl.SSLContext | None],
        context: ssl.SSLContext | None,
        fresh_only: bool,
    ) -> _Http1Connection:
        """An idle connection to `key`, else a new one once the pool has room."""
        pool = self._pool
        while True:
            if not fresh_only:
                connection = pool.take_idle(key)
                if connection is not None:
                    return connection
            if pool.open < pool.limit or pool.evict_idle():
                return await self._connect(origin, key, context)
            await pool.wait()

    async def _connect(
        self,
        origin: _Origin,
        key: tuple[str, int, ssl.SSLContext | None],
        context: ssl.SSLContext | None,
    ) -> _Http1Connection:
        pool = self._pool
        pool.open += 1  # the slot is taken before any await, so the limit holds
        reason = "no address"
        try:
            addresses = [origin.host]
            if self.policy is not None:
                addresses = await self.policy.resolve(origin.host, origin.port)
            for address in addresses:
                try:
                    _, connection = await pool.loop.create_connection(
                        lambda: _Http1Connection(pool, key),
                        address,
                        origin.port,
                        ssl=context,
                        server_hostname=origin.host if context is not None else None,
                    )
                except OSError as exc:  # refused, unreachable, DNS, TLS handshake
                    reason = exc.strerror or type(exc).__name__
                    if isinstance(exc, ssl.SSLError):
                        reason = f"TLS: {exc.reason or exc}"
                    continue
                pool.counted.add(connection)
                return connection
        except BaseException:
            pool.open -= 1
            pool._wake()
            raise
        pool.open -= 1
        pool._wake()
        raise ConnectError(f"cannot connect to {origin.host_header}: {reason}")

    async def aclose(self) -> None:
        """Close the idle connections. The transport stays usable, on any event loop: the
        synchronous facade runs a new loop when a runtime is used again after `close()`."""
        pool = self._pool
        self._pool = _Http1Pool(pool.limit, pool.keepalive)
        pool.close_all()


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
        check_header_fields(request.headers)
        hop = _Hop(request.method, request.url, request.headers, request.content)
        client = self.client
        for _ in range(MAX_REDIRECTS + 1):
            try:
                outgoing = client.build_request(hop.method, hop.url, headers=hop.headers, content=hop.content)
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
