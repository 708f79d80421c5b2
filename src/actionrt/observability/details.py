"""Call details: what each attempt of a recent call sent and got back, with credentials masked,
kept in memory per action (the last `keep` calls). Bodies only when recording them is on.

What is shown, and what is masked (`***`):
- header and query values: shown for protocol headers and for the action's constant fields
  that read no secret; the action's variable fields only when bodies are recorded (they are
  call data); everything else (what authentication or a connector added) is masked, and so is
  whatever authentication wrote, under any name (`CallDetails.before_authentication`);
- the URL: the action's static endpoint; a dynamic path only when bodies are recorded;
- bodies: only with `record_bodies`, each cut at `BODY_LIMIT` bytes.

Each attempt is kept as it was seen and masked when its details are read (`CallDetails`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

if TYPE_CHECKING:
    from actionrt.definition import Action
    from actionrt.http import HttpRequest, HttpResponse
    from actionrt.results import InvocationResult

__all__ = ["BODY_LIMIT", "MASK", "AttemptRecord", "CallDetails", "CallRecorder", "Masking"]

MASK: Final = "***"
BODY_LIMIT: Final = 4096
"""Bytes of a request or response body kept in call details (the rest is cut)."""

_perf = time.perf_counter
_now = time.time

# Protocol headers whose values never carry a credential or customer data.
_PROTOCOL_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "cache-control",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "date",
        "etag",
        "host",
        "retry-after",
        "server",
        "traceparent",
        "tracestate",
        "transfer-encoding",
        "user-agent",
        "vary",
    }
)


class Masking:
    """What one action's call details may show, decided once from its definition.

    Each header name's verdict is decided at its first sight and kept (`_Verdicts`).
    """

    __slots__ = (
        "_request_shown",
        "_response_shown",
        "constant_headers",
        "constant_query",
        "endpoint",
        "record_bodies",
        "variable_headers",
        "variable_query",
    )

    def __init__(self, action: Action, record_bodies: bool) -> None:
        endpoint = action.definition.endpoint
        self.endpoint = endpoint.url  # never with a query (the definition refuses one)
        self.record_bodies = record_bodies
        self.constant_headers = _constants(endpoint.headers)
        self.constant_query = _constants(endpoint.queryParameters)
        self.variable_headers = frozenset(f.name.lower() for f in endpoint.headers if f.variable)
        self.variable_query = frozenset(f.name.lower() for f in endpoint.queryParameters if f.variable)
        self._request_shown = _Verdicts(self._header_shown)
        self._response_shown = _Verdicts(_protocol_header)

    def request_headers(
        self, headers: Mapping[str, str], written: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """`headers` as shown; `written`: the (lower-case) names authentication wrote, masked."""
        shown = self._request_shown  # True, False, or the constant's value to show
        return {
            name: value
            if ((verdict := shown[name]) is True or verdict == value) and name.lower() not in written
            else MASK
            for name, value in headers.items()
        }

    def response_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        # A partner's answer may set a session or a token: only protocol headers are shown.
        shown = self._response_shown
        return {name: value if shown[name] else MASK for name, value in headers.items()}

    def url(self, url: str, written: frozenset[str] = frozenset()) -> str:
        """`url` as shown; `written`: the (lower-case) query keys authentication wrote, masked."""
        if url == self.endpoint:
            return url  # the static endpoint, no query: nothing to mask (most calls)
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if not self.record_bodies and base != self.endpoint:
            base = f"{self.endpoint.rstrip('/')}/{MASK}"  # the dynamic path is call data
        if not parts.query:
            return base
        pairs = [
            (
                key,
                value
                if key.lower() not in written
                and (self.constant_query.get(key.lower()) == value or self._variable_shown(key))
                else MASK,
            )
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return f"{base}?{urlencode(pairs, safe='*')}"

    def _header_shown(self, name: str) -> bool | str:
        """True: shown; a constant's name: its value, shown only when the value sent is that
        value (authentication may write a secret under the same name); False: masked."""
        lowered = name.lower()
        if lowered in _PROTOCOL_HEADERS:
            return True
        constant = self.constant_headers.get(lowered)
        if constant is not None:
            return constant
        return self.record_bodies and lowered in self.variable_headers

    def _variable_shown(self, key: str) -> bool:
        return self.record_bodies and key.lower() in self.variable_query


class _Verdicts(dict[str, bool | str]):
    """Header name -> shown, `decide`d at a name's first lookup and kept for the first
    `NAMES_KEPT` names (an action sends the same few on every call; a partner could answer
    with endless new ones). Masking the bench call's three request and five response headers:
    19,700 instructions with a lower-casing and set tests per header, 15,600 with the kept
    verdicts (callgrind)."""

    NAMES_KEPT: Final = 256

    def __init__(self, decide: Callable[[str], bool | str]) -> None:
        super().__init__()
        self.decide = decide

    def __missing__(self, name: str) -> bool | str:
        verdict = self.decide(name)
        if len(self) < self.NAMES_KEPT:
            self[name] = verdict
        return verdict


def _protocol_header(name: str) -> bool:
    return name.lower() in _PROTOCOL_HEADERS


def _constants(fields: Any) -> dict[str, str]:
    """Constant fields whose value reads no secret (no template at all), by lower-case name: a
    field of that name is shown only with that value, as the definition gives it."""
    return {f.name.lower(): f.value for f in fields if not f.variable and "{{" not in (f.value or "")}


_Bodies = tuple[bytes | None, bool, bytes | None, bool]
"""What is kept of an attempt's request body and answer body, each with whether it was cut."""
_Before = tuple[dict[str, str], str, dict[str, str]]
"""An attempt's request headers and URL before authentication, and its headers as
authentication left them (`CallDetails.before_authentication`)."""
_Seen = tuple[
    float,
    float,
    str,
    str,
    dict[str, str],
    int | None,
    Mapping[str, str] | None,
    str | None,
    _Bodies | None,
    _Before | None,
]
"""What one attempt saw, as it was (`CallDetails.saw`), read only through masking: sent (seconds
after the call started), duration, method, URL, request headers, answer status and headers
(None: no answer), the error when nothing came back, the bodies (None: not recorded), the
request before authentication (None: not known)."""
_NO_BODIES: Final[_Bodies] = (None, False, None, False)
_Written = tuple[frozenset[str], frozenset[str]]
"""The lower-case header names and query keys authentication wrote in a call's attempts."""


@dataclass(slots=True)
class AttemptRecord:
    """One request of a call, masked: what went out, what came back or why nothing did."""

    number: int
    started: float  # seconds after the call started
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    request_body_cut: bool
    duration: float = 0.0
    status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    response_body_cut: bool = False
    error: str | None = None

    def outcome(self) -> str:
        if self.status is not None:
            return f"the endpoint answered {self.status}"
        return f"no answer ({self.error})"

    def as_json(self, retried_because: str | None) -> dict[str, Any]:
        response = (
            None
            if self.status is None
            else {
                "status": self.status,
                "headers": self.response_headers,
                "body": self.response_body,
                "bodyCut": self.response_body_cut,
            }
        )
        return {
            "number": self.number,
            "startedAfter": round(self.started, 6),
            "duration": round(self.duration, 6),
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                "body": self.request_body,
                "bodyCut": self.request_body_cut,
            },
            "response": response,
            "error": self.error,
            "retriedBecause": retried_because,
        }


def _masked(masking: Masking, number: int, seen: _Seen, written: _Written) -> AttemptRecord:
    """An attempt as it may be shown: what it saw, masked (`written`: what authentication wrote
    in the call's attempts, header names and query keys)."""
    started, duration, method, url, headers, status, answer, error, bodies, _ = seen
    request_body, request_cut, answer_body, answer_cut = bodies or _NO_BODIES
    return AttemptRecord(
        number,
        started,
        method,
        masking.url(url, written[1]),
        masking.request_headers(headers, written[0]),
        _decoded(request_body),
        request_cut,
        duration,
        status,
        None if answer is None else masking.response_headers(answer),
        _decoded(answer_body),
        answer_cut,
        error,
    )


def _written(attempts: list[_Seen]) -> _Written:
    """The lower-case header names and query keys authentication wrote in a call's attempts:
    new or changed by it."""
    names: set[str] = set()
    keys: set[str] = set()
    for _, _, _, url, _, _, _, _, _, before in attempts:
        if before is None:
            continue
        unauthenticated, unauthenticated_url, authenticated = before
        names.update(
            name.lower() for name, value in authenticated.items() if unauthenticated.get(name) != value
        )
        if url != unauthenticated_url:  # a query parameter added or changed
            earlier = set(parse_qsl(urlsplit(unauthenticated_url).query, keep_blank_values=True))
            after = parse_qsl(urlsplit(url).query, keep_blank_values=True)
            keys.update(key.lower() for key, value in after if (key, value) not in earlier)
    return frozenset(names), frozenset(keys)


def _decoded(kept: bytes | None) -> str | None:
    return None if kept is None else kept.decode("utf-8", "replace")


class CallDetails:
    """One call and its attempts (the JSON of `GET /actions/{name}/calls/{callId}`).

    Recording is cheap and reading does the work: while the call runs each attempt adds what
    it saw (`saw`), unmasked and private; `finish` adds the outcome; `requests`, `as_json` and
    `summary` read it masked. Most details are never read: at thousands of calls a second one
    is kept ~20 ms. Per API call of `actionrt serve`, details cost ~35,300 instructions when
    each attempt was masked as it was recorded (with a record object per attempt, a
    `CallDetails` made at the end, the recorder's lock) and ~11,300 recorded as seen (callgrind:
    2,000 invokes of bench/throughput.py's action at concurrency 32 with a recorder, less the
    same without; means of 3 and 4 runs, each run within ~2,000).
    """

    __slots__ = (
        "_before",
        "_masking",
        "_seen",
        "_started",
        "action",
        "attempts",
        "call_id",
        "elapsed",
        "error_class",
        "error_code",
        "http_status",
        "ok",
        "queued_seconds",
        "status",
        "time",
        "trace_id",
    )

    call_id: str
    action: str
    time: float
    status: str
    ok: bool
    http_status: int | None
    attempts: int
    elapsed: float
    queued_seconds: float
    error_class: str | None
    error_code: str | None
    trace_id: str | None

    def __init__(self, masking: Masking) -> None:
        """A call starting now, masked by `masking` when read."""
        self._masking = masking
        self._seen: list[_Seen] = []
        self._started = _perf()
        self._before: tuple[dict[str, str], str] | None = None  # the next attempt's

    def before_authentication(self, headers: dict[str, str], url: str) -> None:
        """The next attempt's request headers (a copy) and URL before authentication is applied:
        what it writes, under any name, is masked in every attempt of the call (a constant's,
        a variable field's or a protocol header's name would show otherwise). Worked out when
        read (`_written`). A copy here and none of the work: ~3,200 instructions per API invoke
        of `serve` (callgrind, 332,600 -> 335,800); working out what was written at each
        attempt, with a coroutine around `apply`, cost ~8,500."""
        self._before = (headers, url)

    def saw(
        self,
        sent: float,
        ended: float,
        request: HttpRequest,
        response: HttpResponse | None,
        error: str | None,
        authenticated: dict[str, str] | None = None,
    ) -> None:
        """An attempt sent at `sent` (a `time.perf_counter()`) ended at `ended` with `response`
        (None: with `error`); `authenticated`: its headers as authentication left them, when
        tracing added to them before sending (None: the headers sent). Kept as it was:
        references to the URL and the answer's headers, a copy of the request headers (the
        call's next attempt re-applies authentication, and a traced one its `traceparent`, to
        the same mapping) and, with `record_bodies`, the first `BODY_LIMIT` bytes of each body
        (never a whole body: 1,000 actions x `keep` calls)."""
        started, duration = sent - self._started, ended - sent
        headers = request.headers.copy()
        status, answer = (None, None) if response is None else (response.status, response.headers)
        bodies = _bodies(request, response) if self._masking.record_bodies else None
        before, self._before = self._before, None
        seen: _Seen = (
            started,
            duration,
            request.method,
            request.url,
            headers,
            status,
            answer,
            error,
            bodies,
            None if before is None else (*before, headers if authenticated is None else authenticated),
        )
        self._seen.append(seen)

    def finish(self, call_id: str, result: InvocationResult, trace_id: str | None) -> None:
        """The call ended with `result`."""
        self.call_id = call_id
        self.time = _now()
        self.action = result.action
        self.status = result.status
        self.ok = result.ok
        self.http_status = result.http_status
        self.attempts = result.attempts
        self.elapsed = result.elapsed
        self.queued_seconds = result.queued_seconds
        self.error_class = result.error_class
        self.error_code = result.error_code
        self.trace_id = trace_id

    @property
    def bodies_recorded(self) -> bool:
        return self._masking.record_bodies

    @property
    def requests(self) -> list[AttemptRecord]:
        """Each attempt, masked."""
        masking, written = self._masking, _written(self._seen)
        return [_masked(masking, number, seen, written) for number, seen in enumerate(self._seen, 1)]

    def summary(self) -> dict[str, Any]:
        """The call without its requests (a row of a list of recent calls)."""
        return {
            "callId": self.call_id,
            "action": self.action,
            "time": self.time,
            "status": self.status,
            "ok": self.ok,
            "attempts": self.attempts,
            "elapsed": round(self.elapsed, 6),
        }

    def as_json(self) -> dict[str, Any]:
        requests = self.requests
        # An attempt followed by another was retried because of its own outcome.
        return {
            "callId": self.call_id,
            "action": self.action,
            "time": self.time,
            "status": self.status,
            "ok": self.ok,
            "httpStatus": self.http_status,
            "attempts": self.attempts,
            "elapsed": round(self.elapsed, 6),
            "queuedSeconds": round(self.queued_seconds, 6),
            "errorClass": self.error_class,
            "errorCode": self.error_code,
            "traceId": self.trace_id,
            "bodiesRecorded": self.bodies_recorded,
            "requests": [
                a.as_json(a.outcome() if i + 1 < len(requests) else None) for i, a in enumerate(requests)
            ],
        }


def _bodies(request: HttpRequest, response: HttpResponse | None) -> _Bodies:
    return (*_kept(request.content), *_kept(None if response is None else response.content))


def _kept(content: bytes | None) -> tuple[bytes | None, bool]:
    """What is kept of a body (None: empty), and whether it was cut."""
    if not content:
        return None, False
    return content[:BODY_LIMIT], len(content) > BODY_LIMIT


class CallRecorder:
    """The details of the last `keep` calls of each action (at most `max_actions` actions),
    in memory. `record_bodies` keeps request and response bodies (customer data): off by
    default. Thread-safe."""

    def __init__(self, *, record_bodies: bool = False, keep: int = 50, max_actions: int = 1000) -> None:
        if keep < 1:
            raise ValueError("CallRecorder: keep must be at least 1")
        self.record_bodies = record_bodies
        self.keep = keep
        self.max_actions = max_actions
        self._calls: OrderedDict[str, deque[CallDetails]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, details: CallDetails) -> None:
        """Keep `details` (a finished call). Only a new action's deque is made under the lock:
        an append is one atomic `deque.append`, as a reader's copy of a deque is one `list()`
        (taking the lock for every call cost ~2,000 instructions more, callgrind)."""
        kept = self._calls.get(details.action)
        if kept is None:
            with self._lock:
                kept = self._calls.get(details.action)
                if kept is None:
                    kept = self._calls[details.action] = deque(maxlen=self.keep)
                    if len(self._calls) > self.max_actions:
                        self._calls.popitem(last=False)
        kept.append(details)

    def get(self, action: str, call_id: str) -> CallDetails | None:
        """The details of call `call_id` of `action`, None when not (or no longer) kept."""
        for details in self._kept(action):
            if details.call_id == call_id:
                return details
        return None

    def recent(self, action: str | None = None, limit: int | None = None) -> list[CallDetails]:
        """The kept calls of `action` (None: of every action), newest first."""
        if action is not None:
            found = self._kept(action)
        else:
            found = [details for kept in list(self._calls.values()) for details in list(kept)]
        found.sort(key=lambda details: details.time, reverse=True)
        return found[:limit] if limit is not None else found

    def _kept(self, action: str) -> list[CallDetails]:
        return list(self._calls.get(action, ()))
