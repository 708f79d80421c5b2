"""One HTTP/1.1 connection as an asyncio Protocol; answers parsed by httptools (llhttp).

llhttp does the framing (status line, fields, Content-Length, chunks, trailers); this module
bounds what an answer may make us hold, decodes gzip/deflate, and decides whether the
connection can carry another request. Anything it cannot be sure of closes the connection:
bytes nobody asked for, a second answer, broken framing, an answer read until close.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import cast

import httptools

from actionrt.http.errors import BodyTooLargeError

Answer = tuple[int, dict[str, str], bytes]

MAX_HEAD = 64 * 1024
"""Head and trailers of one answer together (interim answers included), in bytes."""
# llhttp hands over a field only once it is complete and httptools joins its pieces meanwhile:
# feeding at most this much at a time bounds a field that never ends (and the time spent on it).
_FEED = 16 * 1024
_MAX_PENDING = MAX_HEAD - _FEED
_NO_BODY_STATUSES = frozenset({204, 304})


class _ProtocolError(Exception):
    """The server broke HTTP/1.1 framing."""


class _StaleConnection(_ProtocolError):
    """A connection died before a single byte of the answer: safe to try a fresh one once."""


class _Unsolicited(_ProtocolError):
    """Bytes after the answer was complete: a second answer, or a body where none may be."""


class Http1Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses its answer as bytes arrive.

    The sender awaits one future per exchange; each exchange gets its own parser, so nothing of
    one answer can leak into the next. `on_close` is told once when the connection goes.
    """

    def __init__(self, on_close: Callable[[Http1Connection], None]) -> None:
        self._on_close = on_close
        self._told = True  # until `track`: a connection that was never made frees no slot
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the connection's, once made
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self.exchanges = 0
        self._waiter: asyncio.Future[Answer] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self._max_body = 0
        self._received = False
        self._status = 0
        self._headers: dict[str, str] = {}
        self._head_size = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._interim = False
        self._until_close = False
        self._complete = False
        self._events = 0
        self._pending = 0

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not subclasses of asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        # Kept for the exchanges: on Python 3.11 each `asyncio.get_running_loop()` is a getpid
        # system call (~270 ns against ~90 ns for `loop.time()`, timeit), once a connection here.
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done() or self._parser is None:
            self.close()  # bytes nobody asked for: whatever they are, the framing is lost
            return
        self._received = True
        try:
            if len(data) <= _FEED:
                self._feed(data)
            else:
                view = memoryview(data)
                for start in range(0, len(data), _FEED):
                    self._feed(view[start : start + _FEED])
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, (_ProtocolError, BodyTooLargeError)):
                self._fail(cause)
            else:
                self._fail(_ProtocolError(f"broken framing ({exc})"))
        except (_ProtocolError, BodyTooLargeError) as exc:
            self._fail(exc)
        except Exception as exc:  # a bug here must fail this call, not hang it to its deadline
            self._fail(_ProtocolError(f"unreadable answer ({type(exc).__name__})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._gone()
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._until_close and exc is None:
            try:
                self._finish()
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

    def exchange(self, payload: bytes, head_only: bool, max_body: int) -> asyncio.Future[Answer]:
        """Write one request; the future gets (status, headers, body) or the failure."""
        transport, loop = self.transport, self.loop
        assert transport is not None and loop is not None
        waiter = self._waiter = loop.create_future()
        if self.closed or transport.is_closing():
            # The server hung up before we wrote: a write now would vanish and leave the
            # waiter pending until the deadline.
            waiter.set_exception(_StaleConnection("closed before the request was sent"))
            return waiter
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._max_body = max_body
        self._received = self._complete = self._interim = self._until_close = False
        self._headers = {}
        self._chunks = []
        self._head_size = self._size = self._pending = self._status = 0
        self.exchanges += 1
        transport.write(payload)
        return waiter

    @property
    def idle(self) -> bool:
        """Open, reusable and between exchanges: may carry the next request."""
        return not self.closed and self.reusable and (self._waiter is None or self._waiter.done())

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self._gone()

    def track(self) -> None:
        """From now on, tell `on_close` when the connection goes (once)."""
        self._told = False
        if self.closed:
            self._gone()

    def _gone(self) -> None:
        if not self._told:
            self._told = True
            self._on_close(self)

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _feed(self, data: bytes | memoryview) -> None:
        parser = self._parser
        if self._complete or parser is None:
            raise _Unsolicited("bytes after the answer")
        events = self._events
        parser.feed_data(data)
        if self._events != events:
            self._pending = 0
        elif not self._complete:
            # No field, chunk or body came out of these bytes: one line is still growing.
            self._pending += len(data)
            if self._pending > _MAX_PENDING:
                raise _ProtocolError("a line of the answer is longer than 48 KiB")

    # -- parser callbacks (httptools) -------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Unsolicited("a second answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._events += 1
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD:
            raise _ProtocolError("answer head and trailers larger than 64 KiB")
        if self._status:  # a trailer: counted, not kept
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip(" \t")
        headers = self._headers
        headers[key] = text if key not in headers else f"{headers[key]}, {text}"

    def on_headers_complete(self) -> None:
        self._events += 1
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise _ProtocolError("unexpected protocol switch")
            self._headers = {}
            self._interim = True  # 100 Continue, 103 Early Hints: the real answer follows
            return
        self._status = status
        headers = self._headers
        if not parser.should_keep_alive():
            self.reusable = False
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise BodyTooLargeError(f"response body of {declared} bytes exceeds {self._max_body}")
        if self._head_only:
            self._finish()
            return
        if status in _NO_BODY_STATUSES:
            return
        coding = headers.get("transfer-encoding")
        chunked = coding is not None and coding.rsplit(",", 1)[-1].strip().lower() == "chunked"
        if not chunked and declared is None:
            self._until_close = True  # framed by the close: nothing may follow it
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        if self._complete:
            raise _Unsolicited("a body after the answer")
        self._events += 1
        self._size += len(body)
        if self._size > self._max_body:
            raise BodyTooLargeError(f"response body exceeds {self._max_body} bytes")
        self._chunks.append(body)

    def on_chunk_header(self) -> None:
        self._events += 1

    def on_chunk_complete(self) -> None:
        self._events += 1

    def on_message_complete(self) -> None:
        self._events += 1
        if self._interim:
            self._interim = False  # its head still counts toward MAX_HEAD
            return
        if not self._complete:
            self._finish()

    def _finish(self) -> None:
        self._complete = True
        headers = self._headers
        body = b"".join(self._chunks)
        self._chunks = []
        coding = headers.get("transfer-encoding")
        if coding is not None and body:
            # Codings applied before chunked (`gzip, chunked`): undone last applied first.
            for name in reversed([c.strip().lower() for c in coding.split(",")]):
                if name and name != "chunked":
                    body = decode(body, name, self._max_body)
        encoding = headers.get("content-encoding")
        if encoding is not None and body:
            for name in reversed([c.strip().lower() for c in encoding.split(",")]):
                if name:
                    body = decode(body, name, self._max_body)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, headers, body))


def decode(body: bytes, coding: str, max_body: int) -> bytes:
    """Undo gzip (every member) or deflate, never inflating past `max_body`; `identity` and
    codings we do not know are left as sent (the caller sees the header)."""
    if coding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        return body
    parts: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits)
        try:
            plain = inflater.decompress(rest, max_body + 1 - size)
        except zlib.error as exc:
            raise _ProtocolError(f"cannot decode {coding} body") from exc
        size += len(plain)
        if size > max_body or inflater.unconsumed_tail:
            raise BodyTooLargeError(f"response body exceeds {max_body} bytes once decoded")
        if not inflater.eof:
            raise _ProtocolError(f"{coding} body cut short")
        parts.append(plain)
        rest = inflater.unused_data
        if wbits != 16 + zlib.MAX_WBITS:
            break  # deflate has one stream; gzip may have several members (RFC 1952 §2.2)
    return b"".join(parts)
