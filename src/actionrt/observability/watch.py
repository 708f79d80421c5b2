"""`CallWatch`: what a runtime tells about its calls — metrics, spans, the call log line and
call details — from two places on the call path: around the whole call (`call`) and around
each request (`attempts`, a wrapper of the transport's send).

The per-call state travels in a context variable, so the call path passes nothing along.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from actionrt.observability import tracing
from actionrt.observability.details import CallDetails, CallRecorder, Masking
from actionrt.observability.logs import CALL_LOG, log_call
from actionrt.observability.metrics import Metrics

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from actionrt.definition import Action
    from actionrt.http import HttpRequest, HttpResponse
    from actionrt.results import InvocationResult

__all__ = ["ActionWatch", "CallWatch", "last_call_id"]

Send = Callable[["HttpRequest"], Coroutine[Any, Any, "HttpResponse"]]
Apply = Callable[["HttpRequest"], Coroutine[Any, Any, None]]

_T = TypeVar("_T")
_perf = time.perf_counter
_INFO = logging.INFO
# Call ids: unique in a process and across processes (a random prefix), cheap to make.
# An id is 16 hex digits: the process's 8, then the count's 8. `hex` of one number, a 1 in
# front to keep its leading zeros (cut with "0x1"): 800 instructions, 2,700 as an f-string of
# the two parts with `:08x` (callgrind).
_ids = itertools.count((1 << 64) | (int.from_bytes(os.urandom(4)) << 32) | 1)


class ActionWatch:
    """One action as its observers see it, resolved when the runtime is built."""

    __slots__ = ("host", "masking", "metrics", "name", "port")

    def __init__(self, action: Action, metrics: Metrics | None, recorder: CallRecorder | None) -> None:
        parts = urlsplit(action.definition.endpoint.url)
        self.name = action.name
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.metrics = metrics.action(action.name, self.host) if metrics is not None else None
        self.masking = Masking(action, recorder.record_bodies) if recorder is not None else None


class _Call:
    """A traced call in progress (its attempts are child spans), and its details when it is
    recorded too. A call recorded and not traced is its `CallDetails` alone."""

    __slots__ = ("action", "attached", "details", "first_sent_ns", "sent", "span", "tracer")

    def __init__(self, action: ActionWatch, tracer: Tracer, details: CallDetails | None) -> None:
        self.action = action
        self.tracer = tracer
        self.details = details
        self.span, self.attached = tracing.start_call(tracer, action.name)
        self.first_sent_ns = 0
        self.sent = 0


_current: ContextVar[_Call | CallDetails | None] = ContextVar("actionrt_call", default=None)
_Begun = Token[_Call | CallDetails | None]
_last_call_id: ContextVar[str | None] = ContextVar("actionrt_last_call_id", default=None)


def last_call_id() -> str | None:
    """The id of the call this task finished last through a runtime with call logs or call
    details on (to link a record of the call to its details and log line)."""
    return _last_call_id.get()


class CallWatch:
    """The observers of one runtime. `metrics` (None: off), `recorder` (None: no call
    details), `propagate` (send the W3C `traceparent` when tracing)."""

    def __init__(
        self, *, metrics: Metrics | None, recorder: CallRecorder | None = None, propagate: bool = True
    ) -> None:
        self.metrics = metrics
        self.recorder = recorder
        self.propagate = propagate

    def action(self, action: Action) -> ActionWatch:
        return ActionWatch(action, self.metrics, self.recorder)

    def begin(self, action: ActionWatch) -> _Begun | None:
        """A call of `action` starts; when it is traced or recorded, it becomes the current call
        (its attempts find it there) and its span the current span. Hand the answer to `end`."""
        metrics = action.metrics
        if metrics is not None:
            metrics.started()
        tracer = tracing.active_tracer()
        masking = action.masking  # None: not recorded
        if tracer is None:
            if masking is None:
                return None  # nothing needs to follow the attempts
            return _current.set(CallDetails(masking))
        return _current.set(_Call(action, tracer, None if masking is None else CallDetails(masking)))

    def end(self, action: ActionWatch, begun: _Begun | None, result: InvocationResult | None) -> None:
        """The call `begin` started has its result (None: it was cancelled)."""
        span = None
        details = None
        if begun is not None:
            state = _current.get()
            _current.reset(begun)
            if isinstance(state, CallDetails):
                details = state
            elif state is not None:
                details = state.details
                span = state.span
                tracer = state.tracer
                if result is not None and result.queued_seconds > 0.0:
                    ended = state.first_sent_ns or tracing.now_ns()
                    tracing.record_throttle(tracer, result.queued_seconds, ended)
                tracing.end_call(span, state.attached, result)
        metrics = action.metrics
        if result is None:
            if metrics is not None:
                metrics.cancelled()
            return
        if metrics is not None:
            metrics.finished(result.status, result.elapsed, result.attempts, result.queued_seconds)
        recorder = self.recorder
        logged = CALL_LOG.isEnabledFor(_INFO)
        if logged or recorder is not None:
            call_id = hex(next(_ids))[3:]
            _last_call_id.set(call_id)
            trace_id = tracing.trace_id(span) if span is not None else None
            if logged:
                log_call(
                    action.name,
                    result.status,
                    result.attempts,
                    result.elapsed,
                    call_id,
                    trace_id,
                    result.error_code,
                )
            if recorder is not None and details is not None:
                details.finish(call_id, result, trace_id)
                recorder.add(details)

    async def call(
        self, action: ActionWatch, call: Coroutine[Any, Any, InvocationResult]
    ) -> InvocationResult:
        """Await `call` (the whole call of `action`) between `begin` and `end`."""
        begun = self.begin(action)
        result: InvocationResult | None = None
        try:
            result = await call
        finally:
            self.end(action, begun, result)
        return result

    def attempts(self, send: Send) -> Send:
        """`send` wrapped: each request of a call is a client span when tracing (its
        `traceparent` sent), and is recorded when call details are on."""
        propagate = self.propagate

        def watched(request: HttpRequest) -> Coroutine[Any, Any, HttpResponse]:
            # A plain function: a call nobody traces or records awaits `send` itself, with no
            # frame of ours in between.
            state = _current.get()
            if state is None:
                return send(request)
            if isinstance(state, CallDetails):
                return recorded(state, request)
            return traced(state, request)

        async def recorded(details: CallDetails, request: HttpRequest) -> HttpResponse:
            # Recorded, not traced (the service's usual case): one frame of ours, no span.
            sent = _perf()
            try:
                response = await send(request)
            except BaseException as exc:
                details.saw(sent, _perf(), request, None, _failure_kind(exc))
                raise
            details.saw(sent, _perf(), request, response, None)
            return response

        async def traced(state: _Call, request: HttpRequest) -> HttpResponse:
            action = state.action
            state.sent += 1
            if not state.first_sent_ns:
                state.first_sent_ns = tracing.now_ns()
            details = state.details
            # The headers as authentication left them, before tracing adds its own (if it does).
            authenticated = request.headers.copy() if details is not None and propagate else None
            span = tracing.start_attempt(
                state.tracer,
                request.method,
                action.host,
                action.port,
                _span_url(request.url),
                state.sent - 1,
                propagate,
                request.headers,
            )
            sent = _perf()
            try:
                response = await send(request)
            except BaseException as exc:
                kind = _failure_kind(exc)
                tracing.end_attempt(span, None, kind)
                if details is not None:
                    details.saw(sent, _perf(), request, None, kind, authenticated)
                raise
            tracing.end_attempt(span, response.status, None)
            if details is not None:
                details.saw(sent, _perf(), request, response, None, authenticated)
            return response

        return watched

    def authentication(self, apply: Apply) -> Apply:
        """An authenticator's `apply` wrapped for call details: a recorded attempt's request is
        kept as it was before authentication, so that what it writes is masked there whatever
        its name (`CallDetails.before_authentication`). A runtime without a recorder does not
        wrap it."""

        def watched(request: HttpRequest) -> Coroutine[Any, Any, None]:
            state = _current.get()
            details = state if state is None or isinstance(state, CallDetails) else state.details
            if details is not None:
                details.before_authentication(request.headers.copy(), request.url)
            return apply(request)

        return watched

    async def token_request(self, scheme: str, fetch: Coroutine[Any, Any, _T]) -> _T:
        """Await `fetch` (one request to a token endpoint of `scheme`): counted by outcome, and
        an `actionrt.token` span when tracing."""
        tracer = tracing.active_tracer()
        span = (
            tracer.start_span(tracing.TOKEN_SPAN, attributes={"actionrt.auth.scheme": scheme})
            if tracer
            else None
        )
        ok = False
        try:
            fetched = await fetch
            ok = True
            return fetched
        finally:
            if self.metrics is not None:
                self.metrics.token_request(scheme, ok)
            if span is not None:
                tracing.end_token(span, ok)


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"  # the call's deadline cut the attempt
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) else type(exc).__name__


def _span_url(url: str) -> str:
    """`url.full` without the query (it may carry a key or customer data)."""
    cut = url.find("?")
    return url if cut < 0 else url[:cut]
