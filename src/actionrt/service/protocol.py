"""uvicorn's HTTP/1.1 protocol (httptools) with plain invokes answered on the connection.

`actionrt serve` runs uvicorn with this protocol. A request whose head `InvokeHotPath.plain`
accepts (the common `POST /actions/{name}/invoke`) is read, invoked and answered here in one
write by the connection's worker task: no ASGI scope, task per request, receive and send
messages, middleware or router between the socket and the call. uvicorn's own cycle per
request cost ~90,000 instructions on top of a minimal protocol's ~19,000 (callgrind, a trivial
ASGI app; bench/README.md "The service's API"), about as much as the rest of the service's
work besides the call. Every other request — and a plain one whose body or action the route
answers with a problem — goes through uvicorn and the application as before, so there is one
source of every refusal and problem.

What uvicorn does for a connection still holds: keep-alive and its timeout, pipelined requests
answered in order (a request arriving while a plain one is served waits in uvicorn's pipeline),
graceful shutdown (the request in flight finishes), its default headers (`date`).

Less of uvicorn's work per request, each measured in instructions per API invoke (callgrind, the
call's result cached; bench/README.md "The service's API"): the ASGI scope made only for a
request the application answers, and a plain answer's head once per `date` (147,300 ->
143,200); an invoke's target split by one regex, not `parse_url` and `InvokeHotPath.plain`'s
(131,100 -> 127,500); one keep-alive timer per connection, not one armed and cancelled per
request (127,500 -> 121,100). Reading a whole plain invoke ourselves (regexes over the head,
the parser skipped) was tried: ~2,900 less, its regexes costing ~18,700 of what httptools'
callbacks did; not worth a second HTTP parser.

A connection's plain head is decided once (`PlainHead`): a keep-alive client sends the same
head each time but its `content-length`, and comparing the lists stands for the target's regex,
the walk of the headers and the security check; anything else in the head differing, it is
decided again. 343,800 -> 332,900 instructions per API invoke with the call made (callgrind,
bench/README.md "A connection's head decided once").

Once a read begins with a request with that head and holds nothing else, the head's bytes are
kept too: the same bytes again but the length's digits, with the whole body and nothing after
it, are read without the parser (`PlainHead.sent`: two compares of bytes around the digits, not
a parse; the parser read those very bytes once, and would read them the same way again).
Anything else (a head or body split over reads, pipelined requests, a byte of the head changed)
goes through the parser as before. 346,900 -> 335,600 instructions per API invoke (336,700 as
built now), the serving floor 53,500 -> 39,000 (callgrind, bench/README.md "A known head read
without the parser").
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Final

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from actionrt.service.hot_path import InvokeHotPath, PlainInvoke

if TYPE_CHECKING:
    from actionrt.service.app import ServiceApp

Headers = list[tuple[bytes, bytes]]

OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
CLOSE = b"connection: close\r\n"
# An invoke's target in the origin form clients send: its path, action and query, as
# `httptools.parse_url` splits them (no fragment, no escaped name).
INVOKE_TARGET: Final = re.compile(rb"(/actions/([^/?#%]+)/invoke)(?:\?([^#]*))?")
# A `content-length` value as a sent head holds it: digits only, no more than the body cap has.
LENGTH_DIGITS: Final = re.compile(rb"[0-9]{1,7}")
# A head's `content-length` line, up to its value (the line break before it: not the request line).
LENGTH_LINE: Final = re.compile(rb"\r\ncontent-length:", re.IGNORECASE)


class _NobodyWaits:
    """The `message_event` of a plain cycle: uvicorn sets a cycle's event when its connection
    is lost, to wake a `receive()`; a plain cycle has none to wake."""

    def set(self) -> None:
        """Nothing waits."""


_NOBODY_WAITS: Final = _NobodyWaits()


class PlainCycle:
    """A plain invoke in flight. It stands where uvicorn keeps its request cycle
    (`protocol.cycle`), so pipelining, shutdown and a lost connection treat it as any request."""

    __slots__ = (
        "body",
        "disconnected",
        "headers",
        "http_version",
        "invoke",
        "keep_alive",
        "path",
        "query",
        "response_complete",
    )
    message_event: Final = _NOBODY_WAITS  # uvicorn sets it when the connection is lost

    def __init__(
        self,
        invoke: PlainInvoke,
        headers: Headers,
        path: bytes,
        query: bytes,
        http_version: str,
        keep_alive: bool,
    ) -> None:
        self.invoke = invoke
        self.headers = headers  # with the path, query and version: the scope, if the
        self.path = path  # application answers after all (`_through_application`)
        self.query = query
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.body: bytes | bytearray = bytearray()  # the parser adds to it (`on_body`)
        self.response_complete = False
        self.disconnected = False


class PlainHead:
    """A plain invoke's head as its connection saw it last (`InvokeProtocol._plain_cycle`):
    the same head again, but its `content-length`, is the same invoke. Once a read began with a
    request with it and held nothing else, its bytes are known too (`learn`): the same bytes
    again but the length's digits, with the whole body, are read without the parser (`sent`)."""

    __slots__ = ("connection", "headers", "invoke", "length_at", "path", "prefix", "query", "suffix", "url")

    def __init__(
        self, url: bytes, headers: Headers, length_at: int, invoke: PlainInvoke, path: bytes, query: bytes
    ) -> None:
        self.url = url
        self.headers = headers
        self.length_at = length_at
        self.invoke = invoke
        self.path = path
        self.query = query
        # With a `connection` header HTTP/1.0 may ask to be kept alive too: the version is
        # read again (without one, only HTTP/1.1 is kept alive).
        self.connection = any(name == b"connection" for name, _ in headers)
        self.prefix: bytes | None = None  # the head's bytes before its length's digits
        self.suffix = b""  # and after them, to the blank line

    def again(
        self, parser: httptools.HttpRequestParser, url: bytes, headers: Headers, length_at: int
    ) -> bool:
        """Whether a head is this one (HTTP/1.1, kept alive) but for the value of its
        `content-length` (at `length_at`)."""
        seen = self.headers
        return (
            url == self.url
            and length_at == self.length_at
            and len(headers) == len(seen)
            and headers[:length_at] == seen[:length_at]
            and headers[length_at + 1 :] == seen[length_at + 1 :]
            and parser.should_keep_alive()
            and (not self.connection or parser.get_http_version() == "1.1")
        )

    def cycle(self, headers: Headers, body: bytes | None = None) -> PlainCycle:
        """The invoke of a request with this head: `headers` as read, and the `body` read with
        them (read without the parser; None: the parser adds it as it reads it)."""
        cycle = PlainCycle(self.invoke, headers, self.path, self.query, "1.1", True)
        if body is not None:
            cycle.body = body  # kept as read: no copy into the parser's buffer, none back out
        return cycle

    def with_length(self, value: bytes) -> Headers:
        """This head's headers with another `content-length` value."""
        headers = self.headers.copy()
        headers[self.length_at] = (b"content-length", value)
        return headers

    def learn(self, data: bytes, body: bytes) -> None:
        """Keep this head's bytes from `data`, a read that began with a request with this head
        and held `body`, all the body the parser read of it, and nothing else: the head is what
        comes before the first blank line (no header holds one), and the body all after it."""
        end = data.find(b"\r\n\r\n") + 4
        if not data.startswith(b"POST ") or end < 4 or data[end:] != body:
            return  # blank lines first (the parser skips them), or more than the request: not kept
        head = data[:end]
        lengths = [line.end() for line in LENGTH_LINE.finditer(head)]
        if len(lengths) == 1:
            value = self.headers[self.length_at][1]
            start = head.index(value, lengths[0])
            self.prefix, self.suffix = head[:start], head[start + len(value) :]

    def sent(self, data: bytes) -> tuple[bytes, bytes] | None:
        """The `content-length` value and the body when `data` is a request with this head's
        bytes but for the length's digits, and the whole body with nothing after it (as the
        parser would read it: the head ends at its first blank line, which is the suffix's)."""
        prefix = self.prefix
        if prefix is None or not data.startswith(prefix):
            return None
        digits = LENGTH_DIGITS.match(data, len(prefix))
        if digits is None or not data.startswith(self.suffix, end := digits.end()):
            return None
        body = data[end + len(self.suffix) :]
        value = digits[0]
        return (value, body) if len(body) == int(value) else None


class InvokeProtocol(HttpToolsProtocol):
    """One connection of `actionrt serve`; `hot_path` is bound by `invoke_protocol`."""

    hot_path: InvokeHotPath
    cycle: RequestResponseCycle | PlainCycle  # type: ignore[assignment]  # uvicorn reads both alike
    head_for: Headers | None = None  # the default headers `ok_head` holds
    idle_since: float | None = None  # the loop's time of the last answer; None: busy
    length_at = -1  # where the request's `content-length` is in `headers`; -1: none
    last_plain: PlainHead | None = None  # the connection's last plain invoke head
    head_of: PlainHead | None = None  # the plain head the request being read has, if any
    reading = False  # the parser holds part of a request (begun, not complete)
    ok_head = OK_HEAD
    plain_next: PlainCycle | None = None  # read, waiting for the connection's worker
    plain_waker: asyncio.Future[None] | None = None  # the idle worker waits on it
    plain_worker: asyncio.Task[None] | None = None  # `_answer_plain`, while it runs

    def data_received(self, data: bytes) -> None:
        """uvicorn's, but a request with the bytes of the connection's last plain head (but
        its length's digits), read whole, is served without the parser (`PlainHead.sent`)."""
        last = self.last_plain
        at_start = not self.reading  # the read begins with a request
        if at_start and last is not None and self.cycle.response_complete:
            sent = last.sent(data)  # a head is kept once a request was read: there is a cycle
            if sent is not None and self.hot_path.fits(sent[0]):
                self._unset_keepalive_if_required()
                self.cycle = plain = last.cycle(last.with_length(sent[0]), sent[1])
                self._read_plain(plain)
                return
        super().data_received(data)
        # The read began with a plain request whose head's bytes are not known yet: they are,
        # if it held only that request (`learn` checks; `head_of` is then the last plain head).
        head, cycle = self.head_of, self.cycle
        if at_start and head is not None and head.prefix is None and type(cycle) is PlainCycle:
            head.learn(data, bytes(cycle.body))

    def on_message_begin(self) -> None:
        """uvicorn's, but the scope is made only once the request is not plain (`_scope`)."""
        self.reading = True
        self.head_of = None
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.length_at = -1

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's, and where `content-length` is (`PlainHead.again`)."""
        name = name.lower()
        if name == b"content-length":
            self.length_at = len(self.headers)
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        cycle = self._plain_cycle()
        if cycle is None:
            self.scope = self._scope(self.headers)  # type: ignore[assignment]
            super().on_headers_complete()
        else:
            self.cycle = cycle

    def _plain_cycle(self) -> PlainCycle | None:
        """A cycle when this request's head is one the hot path serves and nothing else is in
        flight on the connection (a pipelined request keeps uvicorn's order)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return None
        parser = self.parser
        if self.root_path or self.limit_concurrency is not None:
            return None
        if parser.get_method() != b"POST" or parser.should_upgrade():
            return None
        last, headers, length_at = self.last_plain, self.headers, self.length_at
        if last is not None and last.again(parser, self.url, headers, length_at):
            if self.hot_path.fits(headers[length_at][1]):
                self.head_of = last
                return last.cycle(headers)
            return None
        target = INVOKE_TARGET.fullmatch(self.url)
        if target is not None:  # the form clients send
            path, query = target[1], target[3] or b""
            invoke = self.hot_path.plain_invoke(target[2].decode("ascii"), query, self.headers)
        else:  # another form (absolute, a fragment), or another route
            url = httptools.parse_url(self.url)
            path, query = url.path, url.query or b""
            if b"%" in path:
                return None  # an escaped name: the router decodes it
            invoke = self.hot_path.plain("POST", path.decode("ascii"), query, self.headers)
        if invoke is None:
            return None
        version = parser.get_http_version()
        keep_alive = version != "1.0" and parser.should_keep_alive()
        if version == "1.1" and keep_alive:  # a copy: the application may change a scope's list
            self.last_plain = self.head_of = PlainHead(
                self.url, headers.copy(), length_at, invoke, path, query
            )
        return PlainCycle(invoke, headers, path, query, version, keep_alive)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is PlainCycle:
            cycle.body += body  # its length is at most the hot path's body cap (its head said)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self.reading = False
        cycle = self.cycle
        if type(cycle) is PlainCycle and not cycle.response_complete:
            self._read_plain(cycle)
        else:
            super().on_message_complete()

    def _read_plain(self, cycle: PlainCycle) -> None:
        """A plain invoke read whole: the connection's worker answers it."""
        self.plain_next = cycle
        if self.plain_waker is not None:
            self._wake_worker()
        elif self.plain_worker is None:
            self.plain_worker = task = self.loop.create_task(self._answer_plain())
            task.add_done_callback(self.tasks.discard)  # as uvicorn keeps a request's task
            self.tasks.add(task)

    async def _answer_plain(self) -> None:
        """The connection's worker: answers its plain invokes one after another (one is in
        flight at a time: `_plain_cycle`) and ends once the connection closes. A request read
        whole is called, as its own task would have been, even if the client is gone by then.

        One task per connection, not per request: making a task was ~7,300 instructions (Python
        3.11 registers each in `asyncio.all_tasks`' WeakSet in Python code, and retires it through
        a weakref callback); waking the worker instead saves ~6,000 per API invoke (callgrind,
        bench/README.md "A task per connection"). Requests of one connection share the task's
        context variables: the runtime resets what it sets, and sets the last call id of every
        call it finishes."""
        try:
            while True:
                cycle = self.plain_next
                if cycle is not None:  # read whole: called even if the client is gone by now
                    self.plain_next = None
                    await self._answer(cycle)
                elif self.transport.is_closing():
                    return
                else:
                    waker = self.plain_waker = self.loop.create_future()
                    await waker
        finally:
            self.plain_worker = None
            self.plain_waker = None

    def _wake_worker(self) -> None:
        """Wake the connection's worker if it waits (for a request, or to end)."""
        waker = self.plain_waker
        if waker is not None:
            self.plain_waker = None
            waker.set_result(None)

    async def _answer(self, cycle: PlainCycle) -> None:
        try:
            content = await self.hot_path.answer(cycle.invoke, bytes(cycle.body))
        except Exception as exc:  # as uvicorn does for an application's error
            self.logger.error("Exception in the invoke hot path", exc_info=exc)
            await self._through_application(cycle, failed=True)
            return
        if content is None:
            await self._through_application(cycle)
            return
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()  # a client that does not read its answers waits, as in uvicorn
        if not cycle.disconnected:
            self.transport.write(
                b"%scontent-length: %d\r\n%s\r\n%s"
                % (self._ok_head(), len(content), b"" if cycle.keep_alive else CLOSE, content)
            )
        self._finished(cycle)

    def _ok_head(self) -> bytes:
        """The status line, media type and uvicorn's default headers (its `date` changes each
        second: made again when uvicorn's list is a new one)."""
        defaults = self.server_state.default_headers
        if defaults is not self.head_for:
            self.head_for = defaults
            self.ok_head = OK_HEAD + b"".join(b"%s: %s\r\n" % header for header in defaults)
        return self.ok_head

    def _finished(self, cycle: PlainCycle) -> None:
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _unset_keepalive_if_required(self) -> None:
        """The connection is busy (a read, an answer): uvicorn cancels its keep-alive timer here
        and arms a new one after each answer; the one timer of `on_response_complete` stays,
        and `timeout_keep_alive_handler` checks the idle time."""
        self.idle_since = None

    def on_response_complete(self) -> None:
        """uvicorn's, but the keep-alive timer is armed only when none is."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def timeout_keep_alive_handler(self) -> None:
        """Close the connection idle `timeout_keep_alive` seconds since its last answer, as
        uvicorn does; one that was busy since waits the rest, one busy now is armed again when
        it answers."""
        self.timeout_keep_alive_task = None
        if self.idle_since is None:
            return
        left = self.idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self.timeout_keep_alive_handler)
        elif not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # the transport is closing now: an idle worker ends
        self._wake_worker()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _scope(self, headers: Headers) -> dict[str, Any]:
        """The scope uvicorn's `on_message_begin` starts a request with (`on_headers_complete`
        completes it)."""
        return {
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "headers": headers,
            "state": self.app_state.copy(),
        }

    async def _through_application(self, cycle: PlainCycle, failed: bool = False) -> None:
        """Hand the request to the application (its body already read), answering as uvicorn
        would have from the start; `failed`: our error, answered 500 as uvicorn does."""
        scope = self._scope(cycle.headers)  # and what uvicorn's on_headers_complete fills in
        scope.update(
            method="POST",
            http_version=cycle.http_version,
            path=cycle.path.decode("ascii"),
            raw_path=cycle.path,
            query_string=cycle.query,
        )
        routed = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=cycle.keep_alive,
            on_response=lambda: self._finished(cycle),
        )
        routed.body = bytearray(cycle.body)  # uvicorn's type (a copy, off the plain path)
        routed.more_body = False
        routed.message_event.set()  # the whole body is there
        routed.disconnected = cycle.disconnected
        if self.cycle is cycle:  # from now on, uvicorn follows this one
            self.cycle = routed
        if failed:
            await routed.send_500_response()
        else:
            await routed.run_asgi(self.app)


def invoke_protocol(hot_path: InvokeHotPath) -> type[InvokeProtocol]:
    """The protocol class `uvicorn.Config(http=...)` takes, bound to a service's hot path."""
    return type("InvokeProtocol", (InvokeProtocol,), {"hot_path": hot_path})


def uvicorn_config(app: ServiceApp, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration of the service `app` as `actionrt serve` runs it: plain invokes
    answered on the connection (`InvokeProtocol`), no `server` header; `options` as
    `uvicorn.Config` takes them (host, port, logging, loop)."""
    return uvicorn.Config(app, http=invoke_protocol(app.hot_path), server_header=False, **options)
