"""`Runtime`: loads actions once, then runs each call as a straight line — prepare, guard,
limiter, auth, send and retry within one deadline — and returns an `InvocationResult`.

The core is asyncio (`async with runtime: await runtime.invoke(...)`); `with runtime:` and
`invoke_sync` drive the same core on a private event-loop thread for synchronous engines.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from actionrt.auth.base import AuthenticationError, Authenticator
from actionrt.auth.context import AuthContext
from actionrt.auth.mtls import ClientCertificateError, client_ssl_context
from actionrt.auth.tokens import TokenAuthenticator
from actionrt.connectors import NO_HOOKS, Verdict, call_path_hooks
from actionrt.deadlines import Deadline, Deadlines
from actionrt.definition import Action
from actionrt.errors import Problem, UnknownActionError, ValidationError
from actionrt.events import EventSink
from actionrt.guard import DestinationPolicy
from actionrt.http import (
    CA_BUNDLE_ENV,
    DEFAULT_MAX_BODY,
    ConnectError,
    Http1Transport,
    HttpRequest,
    HttpResponse,
    NetworkError,
    Transport,
    TransportError,
    default_ssl_context,
    proxy_rules,
    trust_ca_bundle,
)
from actionrt.limits import LIMITS_UNAVAILABLE, CappingRule, EndpointLimiter, Limits, LimitsUnavailableError
from actionrt.limits.connections import ConnectionGate
from actionrt.loader import collector_paused
from actionrt.observability import CallRecorder, CallWatch, metrics_for
from actionrt.plugins import Plugins
from actionrt.prepare import CallBuilder, InputError
from actionrt.registry import Registry
from actionrt.results import (
    CAPPED,
    INTERNAL_ERROR,
    NOT_SENT,
    TIMEDOUT,
    ErrorClass,
    InvocationResult,
    http_status_code,
    parse_json_body,
)
from actionrt.retry import (
    FINAL,
    RETRYABLE,
    Backoff,
    Outcome,
    RetryPolicy,
    RetryState,
    Stop,
    answer_outcome,
    decide,
)
from actionrt.secrets import (
    DEFAULT_PROVIDER,
    EnvironmentSecrets,
    MissingSecret,
    MissingSecretError,
    SecretProvider,
    SecretResolver,
    missing_secrets,
    refused_secrets,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from actionrt.expressions import ExpressionEnvironment

__all__ = ["MAX_TIMEOUT", "MIN_TIMEOUT", "Runtime", "default_transport", "proxy_rules"]

log = logging.getLogger("actionrt.runtime")

MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 30.0


def call_timeout(timeout: object) -> float:
    """A caller's timeout for one call, in seconds: between 1 and 30 (`InputError` otherwise)."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT
    ):
        raise InputError("timeout", "must be between 1 and 30 seconds")
    return float(timeout)


_T = TypeVar("_T")
_Failure = tuple[ErrorClass, str]

_perf = time.perf_counter
_wall = time.time


class _ActionEngine:
    """Everything one action's calls need, resolved once: builder, authenticator, limiter,
    retry policy, TLS context. `call()` is the per-call straight line; each step it takes is
    a method below it, and every result is made in `_finish`."""

    __slots__ = (
        "apply",
        "authenticator",
        "builder",
        "classify",
        "connector",
        "deadlines",
        "endpoint",
        "invalidate",
        "limiter",
        "limits",
        "method",
        "name",
        "refused",
        "retry",
        "runtime",
        "shape",
        "sleep",
        "ssl_context",
        "timeout",
        "token_based",
    )

    def __init__(
        self,
        runtime: Runtime,
        action: Action,
        builder: CallBuilder,
        authenticator: Authenticator,
        retry: RetryPolicy,
        ssl_context: ssl.SSLContext | None,
        refused: str | None,
    ) -> None:
        definition = action.definition
        self.runtime = runtime
        self.name = action.name
        self.builder = builder
        self.authenticator = authenticator
        # Recorded calls mask whatever authentication writes: `apply` is watched for them.
        watch = runtime._watch
        self.apply = (
            watch.authentication(authenticator.apply)
            if watch is not None and watch.recorder is not None
            else authenticator.apply
        )
        self.token_based = isinstance(authenticator, TokenAuthenticator) or bool(
            getattr(authenticator, "token_based", False)
        )
        self.invalidate = _invalidator(authenticator)
        self.retry = retry
        self.ssl_context = ssl_context
        self.refused = refused
        self.method = definition.endpoint.method
        self.endpoint = definition.endpoint.url
        self.timeout = float(definition.timeout)
        self.limits = runtime.limits
        self.deadlines = runtime._deadlines
        self.sleep = runtime._sleep
        # The connector's call-path methods, looked up once: per call they are plain calls.
        self.connector = definition.connector
        hooks = (
            call_path_hooks(runtime.plugins.connectors.get(definition.connector))
            if definition.connector
            else NO_HOOKS
        )
        self.shape = hooks.shape_request
        self.classify = hooks.classify_response
        # A static URL has one limiter for its life; a dynamic path asks per call (rules may
        # match on the path), which the limits module caches by URL.
        self.limiter: EndpointLimiter | None = (
            None
            if definition.endpoint.dynamicPath
            else runtime.limits.endpoint(self.method, definition.endpoint.url)
        )

    @property
    def reports_writes(self) -> bool:
        """Whether the transport says when a request is written (`HttpRequest.written`); with
        one that doesn't, every attempt that reached it counts as sent (it may have been)."""
        return bool(getattr(self.runtime.transport, "reports_writes", False))

    # -- the call: a straight line ---------------------------------------------------------------

    async def call(
        self,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        path: str | None,
        timeout: float | None,
        idempotency_key: str | None = None,
    ) -> InvocationResult:
        """Prepare, pass the limiter, then the attempts within one deadline; every way out
        is a result made by `_finish`."""
        call = _Call(_perf())
        try:  # bad input is this call's internalError, and nothing is sent
            if self.refused is not None:
                raise InputError("", self.refused, "destinationRefused")
            url, endpoint, request_headers, content = self.builder.parts(
                params, headers, query, path, idempotency_key
            )
            seconds = self.timeout if timeout is None else call_timeout(timeout)
            if self.shape is not None:
                url, request_headers, content = self._shaped(url, request_headers, content, params)
        except InputError as exc:
            return self._finish(
                call, INTERNAL_ERROR, error=str(exc), error_class="error", error_code=exc.code
            )
        # Capping and throttling come before the deadline starts (reference §6).
        limiter = self.limiter
        if limiter is None:
            limiter = self.limits.endpoint(self.method, endpoint)
        try:  # at once when it can (memory, no throttling rule): no coroutine
            admission = limiter.admit_now()
            if admission is None:
                admission = await limiter.admit()
        except LimitsUnavailableError as exc:  # nothing is sent that the limits could not count
            return self._unavailable(call, exc)
        call.queued = admission.queued_seconds
        if admission.capped:
            return self._capped(call, admission.reason)
        deadline = self.deadlines.start(seconds)
        try:
            with deadline:
                return await self._attempts(call, url, request_headers, content, limiter, deadline)
        except LimitsUnavailableError as exc:  # a fleet-wide connection gate could not be asked
            return self._unavailable(call, exc)
        except TimeoutError:
            if not deadline.expired():
                raise
            return self._timed_out(call, seconds)
        except (AuthenticationError, MissingSecretError) as exc:
            # The message names the token endpoint's status, or the missing secret; `http_status`
            # stays the action endpoint's (None: nothing was sent to it on this attempt).
            error = f"authentication failed: {exc}"
            return self._finish(call, INTERNAL_ERROR, error=error, error_class="error", error_code="auth")

    async def _attempts(
        self,
        call: _Call,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        limiter: EndpointLimiter,
        deadline: Deadline,
    ) -> InvocationResult:
        """Authenticate and send until the answer or failure is final, waiting as `decide` says
        between attempts; every attempt after the first passes the limiter again."""
        method = self.method
        tls, apply = self.ssl_context, self.apply
        while True:
            request = call.request = HttpRequest(method, url, headers, content, tls)
            call.waiting = "no token yet"
            await apply(request)
            call.waiting = None
            try:
                response = await self._send(request, limiter, deadline)
            except TransportError as exc:
                call.sent(request.written if self.reports_writes else exc.sent)
                call.failed("error", exc.kind)
                outcome = RETRYABLE if isinstance(exc, ConnectError | NetworkError) else FINAL
                wait = self._decide(call, outcome, deadline)
                if isinstance(wait, Stop):
                    return self._failed(call, exc, wait.reason)
            else:
                call.sent(True)
                if response.status == 401 and self._unauthorized(call, request):
                    wait = 0.0  # one more try with a new token: an attempt, not a retry
                else:
                    # None: judge by the status; a Verdict: a failure, retried now, later
                    # (after the wait it asks for) or never, with the provider's code.
                    verdict = self.classify(response) if self.classify is not None else None
                    status = response.status
                    if verdict is None and 200 <= status < 300:
                        return self._answered(call, response, verdict)
                    call.failed("http", verdict.code if verdict is not None and verdict.code else str(status))
                    outcome = _outcome(self.retry, response, verdict)
                    wait = self._decide(call, outcome, deadline)
                    if isinstance(wait, Stop):
                        later = outcome.retry_after if outcome.retryable else None
                        return self._answered(call, response, verdict, wait.reason, later)
            if wait > 0:
                await self.sleep(wait)
            call.waiting = "no throttling departure yet"
            try:  # every retry counts against capping
                admission = limiter.admit_now()
                if admission is None:
                    admission = await limiter.admit()
            except LimitsUnavailableError as exc:
                return self._unavailable(call, exc)
            call.waiting = None
            call.queued += admission.queued_seconds
            if admission.capped:
                return self._capped(call, admission.reason)

    # -- the steps of the call -----------------------------------------------------------------

    def _shaped(
        self, url: str, headers: dict[str, str], content: bytes | None, params: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, str], bytes | None]:
        """The connector's shaping (hashing, batching limits) of the URL, headers and body; its
        ValueError is bad input."""
        assert self.shape is not None
        shaped = HttpRequest(self.method, url, dict(headers), content)
        try:
            self.shape(shaped, params or {})
        except ValueError as exc:
            raise InputError("", str(exc)) from None
        if shaped.url != url and _origin(shaped.url) != _origin(url):
            # The endpoint was checked against the destination policy at load: a connector may
            # rewrite the path or query, never the scheme, host or port.
            message = f"the {self.connector} connector moved the request to another host"
            raise InputError("", message, "destinationRefused")
        return shaped.url, shaped.headers, shaped.content

    def _send(
        self, request: HttpRequest, limiter: EndpointLimiter, deadline: Deadline
    ) -> Coroutine[Any, Any, HttpResponse]:
        """One attempt through the transport, holding the connection gates of the rules with
        `maxHttpConnections` when the endpoint has any; its latency is recorded either way."""
        send = self.runtime._send  # the transport's, seen by the runtime's observers
        if limiter.max_connections is None:
            return _timed_send(send, request, limiter, deadline)
        return self.runtime._connections.send(send, request, limiter, deadline)

    def _unauthorized(self, call: _Call, request: HttpRequest) -> bool:
        """After a 401: whether one more try follows. A token is dropped and fetched again once
        per call; a static credential (basic, apiKey, bearer) is dropped so the next call
        re-reads its secret, with no retry (it won't change within the call)."""
        if not self.token_based:
            self.invalidate(request)
            return False
        if call.refreshed:
            return False
        call.refreshed = True
        call.failed("http", "401")
        self.invalidate(request)
        return True

    def _decide(self, call: _Call, outcome: Outcome, deadline: Deadline) -> float | Stop:
        """`decide` for this call, with the time left before its deadline; counts the retry."""
        state = call.retry
        if state is None:
            state = call.retry = RetryState(self.retry)
        state.time_left = deadline.when() - asyncio.get_running_loop().time()
        wait = decide(outcome, state)
        if not isinstance(wait, Stop):
            state.retries += 1
        return wait

    # -- the result: every call ends in `_finish` ----------------------------------------------

    def _answered(
        self,
        call: _Call,
        response: HttpResponse,
        verdict: Verdict | None,
        stopped: str = "",
        retry_after: float | None = None,
    ) -> InvocationResult:
        """The result of the last answer: a success, or an HTTP failure (`stopped`: why a
        retryable one was not retried; `retry_after`: the wait it asked for, for the caller)."""
        status = response.status
        body, is_json = parse_json_body(response.content)
        if verdict is None and 200 <= status < 300:
            return self._finish(
                call,
                http_status_code(status),
                error=None if is_json else "the 2xx answer's body is not JSON",
                error_class=None,
                error_code=None,
                http_status=status,
                response=body,
            )
        note = ""
        if verdict is not None and 200 <= status < 300:
            note = f" with a failure, as the {self.connector} connector reads it"
        code = verdict.code if verdict is not None and verdict.code else None
        if code is not None:
            note += f": {code}"
        if stopped:
            note += f" ({stopped})"
        return self._finish(
            call,
            http_status_code(status),
            error=f"the endpoint answered {status}{note}",
            error_class="http",
            error_code=code or str(status),
            http_status=status,
            error_response=body,
            ok=False,
            provider_message=verdict.message if verdict is not None else None,
            retry_after=retry_after,
        )

    def _failed(self, call: _Call, failure: TransportError, stopped: str) -> InvocationResult:
        """The result of a last attempt that got no answer (network, TLS, refused destination)."""
        note = f"; {stopped}" if stopped else ""
        return self._finish(
            call, INTERNAL_ERROR, error=f"{failure}{note}", error_class="error", error_code=failure.kind
        )

    def _timed_out(self, call: _Call, seconds: float) -> InvocationResult:
        """The result of a call its deadline cut: an attempt in flight counts when its request
        was written; a call that sent nothing says what it waited for, with its own code."""
        request = call.request
        if request is not None and (request.written or not self.reports_writes):
            call.sent(True)
            error = f"no answer within {seconds:g} s (attempt {call.attempts} cancelled)"
            return self._finish(call, TIMEDOUT, error=error, error_class="timeout", error_code=TIMEDOUT)
        waited = (request.waiting_for if request is not None else None) or call.waiting or "not sent yet"
        if call.attempts == 0:
            error = f"nothing sent within {seconds:g} s: {waited}"
            return self._finish(call, TIMEDOUT, error=error, error_class="timeout", error_code=NOT_SENT)
        error = f"no answer within {seconds:g} s ({call.attempts} sent, then {waited})"
        return self._finish(call, TIMEDOUT, error=error, error_class="timeout", error_code=TIMEDOUT)

    def _capped(self, call: _Call, reason: str) -> InvocationResult:
        return self._finish(call, CAPPED, error=reason, error_class="capping", error_code="capped")

    def _unavailable(self, call: _Call, exc: LimitsUnavailableError) -> InvocationResult:
        """The limits store did not answer in time: not sent, since it could not be counted."""
        return self._finish(
            call, INTERNAL_ERROR, error=str(exc), error_class="error", error_code=LIMITS_UNAVAILABLE
        )

    def _finish(
        self,
        call: _Call,
        status: str,
        *,
        error: str | None,
        error_class: ErrorClass | None,
        error_code: str | None,
        http_status: int | None = None,
        response: Any = None,
        error_response: Any = None,
        ok: bool | None = None,
        provider_message: str | None = None,
        retry_after: float | None = None,
    ) -> InvocationResult:
        """The one place a call's result is made. `ok` defaults to "a 2xx answer" (a connector
        may call a 2xx answer a failure); the origin is kept only when it differs from the end."""
        origin = call.origin
        if origin is not None and origin == (error_class, error_code):
            origin = None
        return InvocationResult.made(
            self.name,
            status,
            status[:6] == "http_2" if ok is None else ok,
            http_status,
            response,
            error_response,
            call.attempts,
            error,
            error_class,
            error_code,
            origin[0] if origin else None,
            origin[1] if origin else None,
            _perf() - call.started,
            call.queued,
            self.endpoint,
            self.method,
            provider_message,
            retry_after,
        )

    def unexpected(self, exc: Exception) -> InvocationResult:
        """The result of a call that failed on a bug (the runtime's or a plugin's)."""
        error = f"unexpected {type(exc).__name__}"
        return self._finish(
            _Call(_perf()), INTERNAL_ERROR, error=error, error_class="error", error_code="unexpected"
        )


def _outcome(policy: RetryPolicy, response: HttpResponse, verdict: Verdict | None) -> Outcome:
    """A failed answer's `Outcome`: the connector's verdict when it gave one (`later`: the wait it
    asks for), else the policy's reading of the status and `Retry-After`."""
    retry_after = response.headers.get("retry-after")
    if verdict is not None and verdict.retry == "later":
        return Outcome(True, verdict.after)
    retryable = None if verdict is None else verdict.retry == "now"
    return answer_outcome(policy, response.status, retry_after, retryable, _wall())


class _Call:
    """One call's running record: when it started, its attempts, its first failure, the time it
    queued, whether its token was refreshed, where its retries stand."""

    __slots__ = ("attempts", "origin", "queued", "refreshed", "request", "retry", "started", "waiting")

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempts = 0  # requests written to the endpoint
        self.request: HttpRequest | None = None  # the attempt in flight, until it is counted
        self.waiting: str | None = None  # what the call waits for outside the transport
        self.origin: _Failure | None = None
        self.queued = 0.0
        self.refreshed = False
        self.retry: RetryState | None = None

    def sent(self, written: bool) -> None:
        """The attempt in flight ended: it counts when its request was written."""
        self.request = None
        if written:
            self.attempts += 1

    def failed(self, error_class: ErrorClass, error_code: str) -> None:
        """Note a failed attempt: the first one is the call's origin."""
        if self.origin is None:
            self.origin = (error_class, error_code)


class _ConnectionGates:
    """`maxHttpConnections` of capping rules: at most that many requests in flight at once to the
    URLs a rule matches (one in flight is one connection in use, whatever the transport pools).

    One gate per rule, from the limits' backend: per process in memory, shared by the fleet
    with the Redis backend (see `actionrt.limits.connections`). A call that several such rules
    match holds each rule's gate, taken in uid order so two calls can't each hold one and wait
    for the other; so the smallest `maxHttpConnections` (`limiter.max_connections`) is the one
    that binds. Waiting for a gate counts against the call's deadline, not in the host's
    latency. Endpoints without such a rule never come here.
    """

    __slots__ = ("_by_limiter", "_by_rule", "_limits")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._by_rule: dict[str, ConnectionGate] = {}
        # The gates of each limiter, for the rules generation they were matched in.
        self._by_limiter: dict[EndpointLimiter, tuple[int, tuple[ConnectionGate, ...]]] = {}

    def gates(self, limiter: EndpointLimiter) -> tuple[ConnectionGate, ...]:
        """The gates an attempt through `limiter` must hold (matched once per rules generation)."""
        generation = self._limits.generation
        cached = self._by_limiter.get(limiter)
        if cached is not None and cached[0] == generation:
            return cached[1]
        rules = sorted(
            (r for r in limiter.rules if isinstance(r, CappingRule) and r.max_http_connections is not None),
            key=lambda rule: rule.uid,
        )
        gates = []
        for rule in rules:
            gate = self._by_rule.get(rule.uid)
            if gate is None:
                # A rule's uid changes with its content, so a gate's size never needs to.
                gate = self._by_rule[rule.uid] = self._limits.connection_gate(rule)
            gates.append(gate)
        if len(self._by_limiter) >= _GATE_CACHE_SIZE:
            self._by_limiter.clear()  # limiters of dynamic paths come and go with the rules
        found = self._by_limiter[limiter] = (generation, tuple(gates))
        return found[1]

    async def send(
        self,
        send: Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]],
        request: HttpRequest,
        limiter: EndpointLimiter,
        deadline: Deadline,
    ) -> HttpResponse:
        """`send(request)` while holding the limiter's gates; records the latency of the send,
        as the engine does without gates (network failures and the deadline's cut included)."""
        gates = self.gates(limiter)
        held: list[ConnectionGate] = []
        try:
            request.waiting_for = "no maxHttpConnections slot free"
            for gate in gates:
                await gate.acquire()
                held.append(gate)
            request.waiting_for = None
            return await _timed_send(send, request, limiter, deadline)
        finally:
            for gate in reversed(held):
                gate.release()


_GATE_CACHE_SIZE = 4096


async def _timed_send(
    send: Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]],
    request: HttpRequest,
    limiter: EndpointLimiter,
    deadline: Deadline,
) -> HttpResponse:
    """`send(request)`, recording its latency for the slow-host cap: answers, network failures
    and attempts cut by the call's deadline all count (a host that stops answering is slow)."""
    sent_at = _perf()
    try:
        response = await send(request)
    except (ConnectError, NetworkError):
        limiter.record_latency(_perf() - sent_at)
        raise
    except asyncio.CancelledError:
        if deadline.expired():
            limiter.record_latency(_perf() - sent_at)
        raise
    limiter.record_latency(_perf() - sent_at)
    return response


def default_transport(
    policy: DestinationPolicy,
    max_body: int,
    tls: ssl.SSLContext | None = None,
    *,
    proxy: str | None = None,
    trust_env: bool = True,
) -> Transport:
    """The transport a Runtime gets when none is given: the lean HTTP/1.1 client, chosen by
    measurement (bench/README.md). `AiohttpTransport` is the drop-in alternative. `tls` is
    the default TLS context (its trust store: the system's, plus `ACTIONRT_CA_BUNDLE`).
    `proxy` (default: `ACTIONRT_PROXY`) and `trust_env` choose the forward proxy
    (`proxy_rules`)."""
    return Http1Transport(
        policy=policy, max_body=max_body, ssl_context=tls, proxy=proxy_rules(proxy, trust_env=trust_env)
    )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _invalidator(authenticator: Authenticator) -> Callable[[HttpRequest], None]:
    """`invalidate` taking the request that got the 401 when the authenticator accepts it (the
    built-ins do: a burst of 401s for one old token then causes one refresh, not many)."""
    invalidate: Callable[..., None] = authenticator.invalidate
    try:
        takes_request = len(inspect.signature(invalidate).parameters) >= 1
    except (TypeError, ValueError):
        takes_request = False
    if takes_request:
        return invalidate
    return lambda request: invalidate()


class Runtime:
    """Loaded actions and what calls share: transport, destination policy, limits, tokens.

    Build it with `Runtime.from_path`; open it with `async with` (or `with` for synchronous
    engines); `invoke` never raises for what happens to one call.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        policy: DestinationPolicy | None = None,
        limits: Limits | None = None,
        transport: Transport | None = None,
        auth_context: AuthContext | None = None,
        event_sinks: Sequence[EventSink] = (),
        backoff: Backoff | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        require_secrets: bool = False,
        metrics: bool | CollectorRegistry = True,
        trace_propagation: bool = True,
        recorder: CallRecorder | None = None,
        ca_bundle: str | Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        """Wire a runtime over an already loaded registry; what is not given gets the defaults
        `from_path` documents (the policy follows the registry's `allow_private_network`)."""
        if proxy is not None and transport is not None:
            raise ValueError("proxy= configures the default transport: give your transport its own proxy")
        if policy is None:
            policy = DestinationPolicy(registry.allow_private_network)
        self.ca_bundle = ca_bundle or os.environ.get(CA_BUNDLE_ENV) or None
        # The system's CAs plus a private CA's. Built only for a private CA: a context costs
        # ~60 ms, and the transport makes its default one at its first https call.
        tls = None
        if self.ca_bundle is not None and (transport is None or auth_context is None):
            tls = default_ssl_context(self.ca_bundle)
        self.registry = registry
        self.plugins: Plugins = registry.plugins
        self.policy = policy
        self.limits = limits if limits is not None else Limits()
        self.transport = (
            transport
            if transport is not None
            else default_transport(policy, max_body, tls=tls, proxy=proxy, trust_env=trust_env)
        )
        self.auth_context = (
            auth_context
            if auth_context is not None
            else AuthContext(
                SecretResolver(registry.plugins.secret_providers),
                allow_private_network=policy.allow_private_network,
                policy=policy,
                tls=tls,
            )
        )
        self.event_sinks: tuple[EventSink, ...] = (*event_sinks, *registry.plugins.event_sinks)
        self._backoff = backoff or Backoff()
        self._watch: CallWatch | None = CallWatch(
            metrics=None if metrics is False else metrics_for(None if metrics is True else metrics),
            recorder=recorder,
            propagate=trace_propagation,
        )
        self._send = self._watch.attempts(self.transport.send)
        self.auth_context.observe_token = self._watch.token_request
        self.auth_context.use_transport(self.transport)  # token calls: same guard, pools, proxy
        self._sleep = sleep
        self._connections = _ConnectionGates(self.limits)
        self._deadlines = Deadlines()
        self._engines: dict[str, _ActionEngine] = {}
        self._opened = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # An action whose secrets are not set yet is wired at its first call that finds them
        # set: until then its calls are internalError naming each secret, and nothing is sent.
        # The other actions of the folder serve meanwhile. `require_secrets` refuses the load.
        self._awaiting_secrets: dict[str, Action] = {}
        problems: list[Problem] = []
        with collector_paused():  # thousands of long-lived engines: see collector_paused
            for action in registry.actions.values():
                refused = _missing_secrets(action, self.auth_context.secrets, refused_secrets)
                if refused:  # a secret it may never read (the environment's allow-list): refused now
                    problems += refused
                    continue
                missing = _missing_secrets(action, self.auth_context.secrets)
                if missing:  # building it would only report the first one again
                    if require_secrets:
                        problems += missing
                    else:
                        self._awaiting_secrets[action.name] = action
                        log.warning(
                            "action %s: its calls fail until set: %s",
                            action.name,
                            "; ".join(str(p) for p in missing),
                        )
                    continue
                try:
                    self._engines[action.name] = self._engine(action)
                except ValidationError as exc:
                    problems += exc.problems
        if problems:
            raise ValidationError(problems)
        # Every loaded action, those awaiting their secrets included (their calls count too).
        self._watches = {name: self._watch.action(action) for name, action in registry.actions.items()}

    @classmethod
    def from_path(
        cls,
        path: str | Path | Iterable[str | Path],
        *,
        allow_private_network: bool | None = None,
        capping: Iterable[Mapping[str, Any]] | str | None = None,
        throttling: Iterable[Mapping[str, Any]] | str | None = None,
        plugins: Iterable[object] = (),
        transport: Transport | None = None,
        event_sinks: Iterable[EventSink] = (),
        max_body: int = DEFAULT_MAX_BODY,
        secrets: Mapping[str, SecretProvider] | None = None,
        env_secrets: Iterable[str] | None = None,
        policy: DestinationPolicy | None = None,
        limits: Limits | None = None,
        backoff: Backoff | None = None,
        require_secrets: bool = False,
        metrics: bool | CollectorRegistry = True,
        trace_propagation: bool = True,
        recorder: CallRecorder | None = None,
        ca_bundle: str | Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> Runtime:
        """Load the actions under `path` (a file or a directory) and wire the runtime.

        `allow_private_network=None` reads `ACTIONRT_ALLOW_PRIVATE_NETWORK`. `capping` and
        `throttling` take the published JSON rule shapes (a list, or a file path). `secrets`
        adds secret providers by name to the plugins' (the environment is built in).
        `env_secrets`: the environment variables actions may read, names and `PREFIX*` (default:
        `$ACTIONRT_ENV_SECRETS`, else none; `ACTIONRT_*` never). `policy`,
        `limits`, `transport` and `backoff` replace the defaults (tests scale the backoff);
        `sleep` waits between attempts (tests record the waits instead).
        Raises `ValidationError` listing every problem of every file. A secret that is not set
        fails only the calls of the actions that read it (`internalError` naming it, nothing
        sent); `require_secrets=True` makes it a load problem too, for engines that want every
        action ready at start.
        `metrics`: count calls in prometheus_client's default registry (True), in the given
        registry, or not at all (False). `trace_propagation=False` keeps the W3C `traceparent`
        off outgoing requests (spans are still made when an OpenTelemetry SDK is configured).
        `recorder` keeps the details of recent calls (docs/observability.md).
        `ca_bundle` (default: `ACTIONRT_CA_BUNDLE`) is a PEM file of private CAs trusted
        besides the system's, by action calls and token calls alike.
        `proxy` (default: `ACTIONRT_PROXY`) is a forward proxy URL for every call, token calls
        included (`http://user:{{ secrets.PROXY_PASSWORD }}@proxy:3128`); without one, and
        unless `trust_env=False`, `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` are followed as
        urllib and curl do. The destination policy still checks every origin (docs/security.md).
        """
        if policy is None:
            policy = DestinationPolicy(allow_private_network)
        loaded = Plugins.load(extra=plugins)
        registry = Registry.from_path(
            path, plugins=loaded, allow_private_network=policy.allow_private_network
        )
        providers = {**loaded.secret_providers, **(secrets or {})}
        if env_secrets is not None:
            providers[DEFAULT_PROVIDER] = EnvironmentSecrets(env_secrets)
        auth_context = AuthContext(
            SecretResolver(providers),
            allow_private_network=policy.allow_private_network,
            policy=policy,
            tls=default_ssl_context(bundle)
            if (bundle := ca_bundle or os.environ.get(CA_BUNDLE_ENV))
            else None,
        )
        return cls(
            registry,
            policy=policy,
            limits=limits if limits is not None else Limits(capping or (), throttling or ()),
            transport=transport,
            auth_context=auth_context,
            event_sinks=tuple(event_sinks),
            backoff=backoff,
            max_body=max_body,
            require_secrets=require_secrets,
            metrics=metrics,
            trace_propagation=trace_propagation,
            recorder=recorder,
            ca_bundle=ca_bundle,
            sleep=sleep,
            proxy=proxy,
            trust_env=trust_env,
        )

    def _engine(self, action: Action) -> _ActionEngine:
        definition = action.definition
        secrets = self.auth_context.secrets
        scheme = self.plugins.schemes.get(definition.auth_type)
        if scheme is None:  # the registry validated it with the same plugins
            raise ValidationError.single(action.source, "authentication.type", "unknown scheme")
        try:
            authenticator = scheme.build(action.auth, self.auth_context)
        except (ValueError, TypeError, KeyError, MissingSecretError) as exc:
            raise ValidationError.single(action.source, "authentication", str(exc)) from None
        refused: str | None = None
        try:
            self.policy.check_url(definition.endpoint.url)
        except TransportError as exc:
            refused = f"destination refused: {exc}"
        return _ActionEngine(
            self,
            action,
            CallBuilder(action, secrets),
            authenticator,
            RetryPolicy(definition.retry.count, definition.retry.policy, self._backoff),
            _client_tls(action, secrets, self.ca_bundle),
            refused,
        )

    # -- actions added, replaced and removed while the runtime runs -----------------------------

    def put_action(self, action: Action) -> None:
        """Add `action`, or replace the loaded action of that name. Calls already running finish
        with the definition they started with; the transport, limits (connection gates included)
        and token cache stay shared. Raises `ValidationError` (nothing changes) when it can't run."""
        missing = _missing_secrets(action, self.auth_context.secrets)
        if missing:
            raise ValidationError(missing)
        engine = self._engine(action)
        self.registry.actions[action.name] = action
        self._engines[action.name] = engine
        self._awaiting_secrets.pop(action.name, None)
        if self._watch is not None:  # the masking of call details follows the definition
            self._watches[action.name] = self._watch.action(action)

    def remove_action(self, name: str) -> None:
        """Stop taking calls for `name` (calls already running finish); no-op if not loaded."""
        self._engines.pop(name, None)
        self._awaiting_secrets.pop(name, None)
        self._watches.pop(name, None)
        self.registry.actions.pop(name, None)

    # -- the call ------------------------------------------------------------------------------

    @property
    def actions(self) -> list[str]:
        """The names of the loaded actions."""
        return [*self._engines, *self._awaiting_secrets]

    def get_action(self, name: str) -> Action:
        """The loaded action `name`; `UnknownActionError` when there is none."""
        action = self.registry.actions.get(name)
        if action is None or (name not in self._engines and name not in self._awaiting_secrets):
            raise UnknownActionError(name, self.actions)
        return action

    def _wire_awaiting(self, name: str) -> _ActionEngine | InvocationResult:
        """The engine of an action loaded without its secrets, built now that they are set; or
        the `internalError` result naming each secret still missing (nothing is sent)."""
        action = self._awaiting_secrets.get(name)
        if action is None:
            raise UnknownActionError(name, self.actions)
        missing = _missing_secrets(action, self.auth_context.secrets)
        if not missing:
            try:
                engine = self._engine(action)
            except ValidationError as exc:
                missing = exc.problems
            else:
                self._engines[name] = engine
                del self._awaiting_secrets[name]
                return engine
        endpoint = action.definition.endpoint
        message = "; ".join(f"{p.path}: {p.message}" for p in missing)
        return InvocationResult.unsent(name, message, "secret", endpoint=endpoint.url, method=endpoint.method)

    @functools.cached_property
    def expressions(self) -> ExpressionEnvironment:
        """The sandboxed environment of journey mappings, with the plugins' functions and
        filters; built on first use, once per runtime."""
        from actionrt.expressions import ExpressionEnvironment

        return ExpressionEnvironment(self.plugins.functions, self.plugins.filters)

    async def invoke(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> InvocationResult:
        """Call action `name` once (with its retries); never raises for what happens to the
        call. `UnknownActionError` when no action has that name. `idempotency_key` fills the
        action's `idempotencyKey` header (default: a fresh value per call)."""
        engine = self._engines.get(name)
        watch = self._watch
        watched = self._watches.get(name) if watch is not None else None
        state = watch.begin(watched) if watch is not None and watched is not None else None
        result: InvocationResult | None = None
        try:
            if engine is None:
                wired = self._wire_awaiting(name)
                if isinstance(wired, InvocationResult):
                    result = wired
                    return self._emitted(result)
                engine = wired
            try:
                result = await engine.call(params, headers, query, path, timeout, idempotency_key)
            except Exception as exc:  # a bug must not take the journey down: report it
                log.exception("action %s failed unexpectedly", name)
                result = engine.unexpected(exc)
        finally:
            if watch is not None and watched is not None:
                watch.end(watched, state, result)
        return self._emitted(result)

    def _emitted(self, result: InvocationResult) -> InvocationResult:
        if self.event_sinks:
            self.emit_event(result)
        return result

    def emit_event(self, result: InvocationResult) -> None:
        """Send `result`'s step event to the sinks. `invoke` does it for every call; a caller
        that makes a result without invoking (a journey node whose mapping failed) may too."""
        event = result.as_event()
        for sink in self.event_sinks:
            try:
                sink.emit(event)
            except Exception:  # a broken sink loses its event, not the call
                log.exception("event sink %r failed", sink)

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the connection pools and call the plugins' startup hook (idempotent)."""
        if self._opened:
            return
        self._opened = True
        opener = getattr(self.transport, "open", None)
        if opener is not None:
            await opener()
        await self.plugins.startup(self)  # awaits what the hooks return

    async def aclose(self) -> None:
        """Close pools, the token client and the limits backend; calls the shutdown hook."""
        if not self._opened:
            return
        self._opened = False
        try:
            await self.plugins.shutdown(self)  # every plugin, even after one fails
        finally:
            await self.transport.aclose()
            await self.auth_context.aclose()
            await self.limits.aclose()

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the synchronous facade: the same core on a private loop thread ------------------------

    def invoke_sync(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """`invoke` for synchronous callers; thread-safe. Prefer `with runtime:` around it."""
        if name not in self._engines and name not in self._awaiting_secrets:
            raise UnknownActionError(name, self.actions)
        return self._run(self.invoke(name, params, headers=headers, query=query, path=path, timeout=timeout))

    def __enter__(self) -> Runtime:
        self._run(self.open())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the runtime and stop its private loop thread (for the synchronous facade)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(self.aclose())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._loop = self._thread = None

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            loop = self._start_loop()
        elif threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("invoke_sync called from the runtime's own loop: await invoke()")
        future: concurrent.futures.Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def _start_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="actionrt-runtime", daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread
        return loop


def _missing_secrets(
    action: Action,
    secrets: SecretResolver,
    find: Callable[[Any, SecretResolver], list[MissingSecret]] = missing_secrets,
) -> list[Problem]:
    """Each secret the action's authentication block, constant headers, query parameters and
    client-certificate password reference that a checkable provider (the environment, files)
    has no value for now: one problem each, naming the secret, never a value. Secrets of
    providers that can't be checked in advance are reported at first use. `find=refused_secrets`:
    only those no value would make readable."""
    endpoint = action.definition.endpoint
    blocks: list[tuple[str, Any]] = [("authentication", action.definition.authentication)]
    for where, fields in (("headers", endpoint.headers), ("queryParameters", endpoint.queryParameters)):
        blocks += [
            (f"endpoint.{where}[{index}].value", field.value)
            for index, field in enumerate(fields)
            if field.value is not None
        ]
    certificate = endpoint.clientCertificate
    if certificate is not None and certificate.password is not None:
        blocks.append(("endpoint.clientCertificate.password", certificate.password))
    problems = []
    for prefix, block in blocks:
        for missing in find(block, secrets):
            path = f"{prefix}.{missing.path}" if missing.path else prefix
            problems.append(Problem(action.source, path, f"secret {missing.name!r} {missing.reason}"))
    return problems


def _client_tls(
    action: Action, secrets: SecretResolver, ca_bundle: str | Path | None
) -> ssl.SSLContext | None:
    """The TLS context presenting the action's client certificate (mutual TLS), if it has one;
    it trusts the private CA bundle too."""
    certificate = action.definition.endpoint.clientCertificate
    if certificate is None:
        return None
    try:
        password = secrets.resolve(certificate.password) if certificate.password else None
        context = client_ssl_context(certificate.certFile, certificate.keyFile, password)
        trust_ca_bundle(context, ca_bundle)
        return context
    except MissingSecretError as exc:
        raise ValidationError.single(action.source, "endpoint.clientCertificate.password", str(exc)) from None
    except ClientCertificateError as exc:
        raise ValidationError.single(action.source, "endpoint.clientCertificate", str(exc)) from None
