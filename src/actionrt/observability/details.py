"""Call details: what each attempt of a recent call sent and got back, with credentials masked,
kept in memory per action (the last `keep` calls). Bodies only when recording them is on.

What is shown, and what is masked (`***`):
- header and query values: shown for protocol headers and for the action's constant fields
  that read no secret; the action's variable fields only when bodies are recorded (they are
  call data); everything else (what authentication or a connector added) is masked;
- the URL: the action's static endpoint; a dynamic path only when bodies are recorded;
- bodies: only with `record_bodies`, each cut at `BODY_LIMIT` bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

if TYPE_CHECKING:
    from actionrt.definition import Action
    from actionrt.http import HttpRequest, HttpResponse

__all__ = ["BODY_LIMIT", "MASK", "AttemptRecord", "CallDetails", "CallRecorder", "Masking"]

MASK: Final = "***"
BODY_LIMIT: Final = 4096
"""Bytes of a request or response body kept in call details (the rest is cut)."""

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
        "endpoint",
        "headers",
        "query",
        "record_bodies",
        "variable_headers",
        "variable_query",
    )

    def __init__(self, action: Action, record_bodies: bool) -> None:
        endpoint = action.definition.endpoint
        self.endpoint = endpoint.url  # never with a query (the definition refuses one)
        self.record_bodies = record_bodies
        self.headers = _PROTOCOL_HEADERS | _constants(endpoint.headers)
        self.query = _constants(endpoint.queryParameters)
        self.variable_headers = frozenset(f.name.lower() for f in endpoint.headers if f.variable)
        self.variable_query = frozenset(f.name.lower() for f in endpoint.queryParameters if f.variable)
        self._request_shown = _Verdicts(self._header_shown)
        self._response_shown = _Verdicts(_protocol_header)

    def request_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        shown = self._request_shown
        return {name: value if shown[name] else MASK for name, value in headers.items()}

    def response_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        # A partner's answer may set a session or a token: only protocol headers are shown.
        shown = self._response_shown
        return {name: value if shown[name] else MASK for name, value in headers.items()}

    def url(self, url: str) -> str:
        if url == self.endpoint:
            return url  # the static endpoint, no query: nothing to mask (most calls)
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if not self.record_bodies and base != self.endpoint:
            base = f"{self.endpoint.rstrip('/')}/{MASK}"  # the dynamic path is call data
        if not parts.query:
            return base
        pairs = [
            (key, value if key.lower() in self.query or self._variable_shown(key) else MASK)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return f"{base}?{urlencode(pairs, safe='*')}"

    def body(self, content: bytes | None) -> tuple[str | None, bool]:
        """The body as kept (None when bodies are off or empty) and whether it was cut."""
        if not self.record_bodies or not content:
            return None, False
        return content[:BODY_LIMIT].decode("utf-8", "replace"), len(content) > BODY_LIMIT

    def _header_shown(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.headers or (self.record_bodies and lowered in self.variable_headers)

    def _variable_shown(self, key: str) -> bool:
        return self.record_bodies and key.lower() in self.variable_query


class _Verdicts(dict[str, bool]):
    """Header name -> shown, `decide`d at a name's first lookup and kept for the first
    `NAMES_KEPT` names (an action sends the same few on every call; a partner could answer
    with endless new ones). Masking the bench call's three request and five response headers:
    19,700 instructions with a lower-casing and set tests per header, 15,600 with the kept
    verdicts (callgrind)."""

    NAMES_KEPT: Final = 256

    def __init__(self, decide: Callable[[str], bool]) -> None:
        super().__init__()
        self.decide = decide

    def __missing__(self, name: str) -> bool:
        verdict = self.decide(name)
        if len(self) < self.NAMES_KEPT:
            self[name] = verdict
        return verdict


def _protocol_header(name: str) -> bool:
    return name.lower() in _PROTOCOL_HEADERS


def _constants(fields: Any) -> frozenset[str]:
    """Names of constant fields whose value reads no secret (no template at all)."""
    return frozenset(f.name.lower() for f in fields if not f.variable and "{{" not in (f.value or ""))


@dataclass(slots=True)
class AttemptRecord:
    """One request of a call: what went out, what came back or why nothing did."""

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

    def answered(self, masking: Masking, response: HttpResponse, duration: float) -> None:
        self.duration = duration
        self.status = response.status
        self.response_headers = masking.response_headers(response.headers)
        self.response_body, self.response_body_cut = masking.body(response.content)

    def failed(self, error: str, duration: float) -> None:
        self.duration = duration
        self.error = error

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


def start_attempt(masking: Masking, number: int, started: float, request: HttpRequest) -> AttemptRecord:
    body, cut = masking.body(request.content)
    return AttemptRecord(
        number,
        started,
        request.method,
        masking.url(request.url),
        masking.request_headers(request.headers),
        body,
        cut,
    )


@dataclass(slots=True)
class CallDetails:
    """One finished call and its attempts (the JSON of `GET /actions/{name}/calls/{callId}`)."""

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
    bodies_recorded: bool
    requests: list[AttemptRecord] = field(default_factory=list)

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
        with self._lock:
            kept = self._calls.get(details.action)
            if kept is None:
                kept = self._calls[details.action] = deque(maxlen=self.keep)
                if len(self._calls) > self.max_actions:
                    self._calls.popitem(last=False)
            kept.append(details)

    def get(self, action: str, call_id: str) -> CallDetails | None:
        """The details of call `call_id` of `action`, None when not (or no longer) kept."""
        with self._lock:
            for details in self._calls.get(action, ()):
                if details.call_id == call_id:
                    return details
        return None

    def recent(self, action: str | None = None, limit: int | None = None) -> list[CallDetails]:
        """The kept calls of `action` (None: of every action), newest first."""
        with self._lock:
            if action is not None:
                found = list(self._calls.get(action, ()))
            else:
                found = [details for kept in self._calls.values() for details in kept]
        found.sort(key=lambda details: details.time, reverse=True)
        return found[:limit] if limit is not None else found
