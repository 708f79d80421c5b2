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
from actionrt.observability.details import AttemptRecord, CallDetails, CallRecorder, Masking, start_attempt
from actionrt.observability.logs import CALL_LOG, log_call
from actionrt.observability.metrics import Metrics

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from actionrt.definition import Action
    from actionrt.http import HttpRequest, HttpResponse
    from actionrt.results import InvocationResult

__all__ = ["ActionWatch", "CallWatch", "last_call_id"]

Send = Callable[["HttpRequest"], Coroutine[Any, Any, "HttpResponse"]]

_T = TypeVar("_T")
_perf = time.perf_counter
_INFO = logging.INFO
# Call ids: unique in a process and across processes (a random prefix), cheap to make.
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)


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
    """One call in progress that is traced or recorded (the attempts need to know it)."""

    __slots__ = (
        "action",
        "attached",
        "first_sent_ns",
        "requests",
        "sent",
        "span",
        "started",
        "token",
        "tracer",
    )

    def __init__(self, action: ActionWatch, tracer: Tracer | None, detailed: bool) -> None:
        self.action = action
        self.tracer = tracer
        self.span: Span | None = None
        self.attached: object = None
        self.token: Token[_Call | None] = _current.set(self)
        self.started = _perf()
        self.first_sent_ns = 0
        self.sent = 0
        self.requests: list[AttemptRecord] | None = [] if detailed else None


_current: ContextVar[_Call | None] = ContextVar("actionrt_call", default=None)
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

    def begin(self, action: ActionWatch) -> _Call | None:
        """A call of `action` starts; when it is traced or recorded, its state (and its span
        becomes the current one). Hand the answer to `end`."""
        metrics = action.metrics
        if metrics is not None:
            metrics.started()
        tracer = tracing.active_tracer()
        if tracer is None and self.recorder is None:
            return None  # nothing needs to follow the attempts
        state = _Call(action, tracer, self.recorder is not None)  # now the current call
        if tracer is not None:
            state.span, state.attached = tracing.start_call(tracer, action.name)
        return state

    def end(self, action: ActionWatch, state: _Call | None, result: InvocationResult | None) -> None:
        """The call `begin` started has its result (None: it was cancelled)."""
        span = None
        if state is not None:
            _current.reset(state.token)
            span = state.span
            if span is not None:
                tracer = state.tracer
                if tracer is not None and result is not None and result.queued_seconds > 0.0:
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
            call_id = f"{_ID_PREFIX}{next(_ids):08x}"
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
            if recorder is not None and state is not None:
                recorder.add(_details(call_id, state, result, trace_id, recorder.record_bodies))

    async def call(
        self, action: ActionWatch, call: Coroutine[Any, Any, InvocationResult]
    ) -> InvocationResult:
        """Await `call` (the whole call of `action`) between `begin` and `end`."""
        state = self.begin(action)
        result: InvocationResult | None = None
        try:
            result = await call
        finally:
            self.end(action, state, result)
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
            return observed(state, request)

        async def observed(state: _Call, request: HttpRequest) -> HttpResponse:
            action = state.action
            tracer = state.tracer
            span: Span | None = None
            state.sent += 1
            if tracer is not None:
                if not state.first_sent_ns:
                    state.first_sent_ns = tracing.now_ns()
                span = tracing.start_attempt(
                    tracer,
                    request.method,
                    action.host,
                    action.port,
                    _span_url(request.url),
                    state.sent - 1,
                    propagate,
                    request.headers,
                )
            record: AttemptRecord | None = None
            requests = state.requests
            masking = action.masking
            started = _perf()
            if requests is not None and masking is not None:
                record = start_attempt(masking, state.sent, started - state.started, request)
                requests.append(record)
            try:
                response = await send(request)
            except BaseException as exc:
                kind = _failure_kind(exc)
                if span is not None:
                    tracing.end_attempt(span, None, kind)
                if record is not None:
                    record.failed(kind, _perf() - started)
                raise
            if span is not None:
                tracing.end_attempt(span, response.status, None)
            if record is not None and masking is not None:
                record.answered(masking, response, _perf() - started)
            return response

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


def _details(
    call_id: str, state: _Call, result: InvocationResult, trace_id: str | None, bodies: bool
) -> CallDetails:
    return CallDetails(
        call_id,
        result.action,
        time.time(),
        result.status,
        result.ok,
        result.http_status,
        result.attempts,
        result.elapsed,
        result.queued_seconds,
        result.error_class,
        result.error_code,
        trace_id,
        bodies,
        state.requests or [],
    )
