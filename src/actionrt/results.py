"""`InvocationResult`: what one call came to — the journey's `jo_status_code`, the parsed body,
the attempts, and the reporting fields of reference §5 — and the step event built from it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from actionrt.jsoncodec import decode_json

__all__ = [
    "CAPPED",
    "INTERNAL_ERROR",
    "NOT_SENT",
    "TIMEDOUT",
    "ErrorClass",
    "InvocationResult",
    "http_status_code",
    "parse_json_body",
]

TIMEDOUT: Final = "timedout"
NOT_SENT: Final = "notSent"
"""The error code of a `timedout` call that sent nothing: it waited (for a connection, a
throttling departure, a token) until its deadline. Safe to send again."""
CAPPED: Final = "capped"
INTERNAL_ERROR: Final = "internalError"

ErrorClass = Literal["http", "capping", "timeout", "error"]
"""The reporting classes of reference §5: an HTTP error status, capped, timed out, or any other
error (bad input, network, authentication, refused destination, oversized body)."""

# `http_200`, `http_404`, ... built once: the success path does no string formatting.
_HTTP_CODES: Final = {status: f"http_{status}" for status in range(100, 600)}


def http_status_code(status: int) -> str:
    """The `jo_status_code` of an HTTP answer."""
    return _HTTP_CODES.get(status) or f"http_{status}"


def parse_json_body(content: bytes) -> tuple[Any, bool]:
    """The body parsed as JSON, and whether it was JSON (an empty body is None, and fine)."""
    if not content:
        return None, True
    try:
        return decode_json(content), True
    except (ValueError, UnicodeDecodeError):
        return None, False


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """The outcome of one `Runtime.invoke`: never an exception, always one of these.

    `status` is the journey's `jo_status_code` (`http_<code>`, `timedout`, `capped`,
    `internalError`); `ok` is True only for a 2xx answer. `error_class`/`error_code` classify a
    failure for reports (`http`/`500`, `timeout`/`timedout`, `capping`/`capped`,
    `error`/`connect`...). `origin_error_class`/`origin_error_code` keep the first failure
    when a retry later ended differently (first `http` `500`, finally `timeout`). `elapsed` is
    in seconds and includes time queued by throttling. `attempts` counts the requests written to
    the endpoint; `sent` is True when at least one was (a call not sent may be sent again
    safely). `endpoint` is the action's static URL (never the dynamic path or the query, which
    may hold personal data or a key).
    When the action's connector read the answer, `error_code` is the provider's own code
    (`fcm:UNREGISTERED`, `graph:613`) and `provider_message` its message; `retry_after` is set
    (seconds) when the provider asked for a later retry that did not fit the call's deadline, so
    the caller can reschedule the call rather than resend it at once.
    """

    action: str
    status: str
    ok: bool
    http_status: int | None
    response: Any
    error_response: Any
    attempts: int
    error: str | None
    error_class: ErrorClass | None
    error_code: str | None
    origin_error_class: ErrorClass | None
    origin_error_code: str | None
    elapsed: float
    queued_seconds: float
    endpoint: str
    method: str
    provider_message: str | None = None
    retry_after: float | None = None

    @staticmethod
    def made(
        action: str,
        status: str,
        ok: bool,
        http_status: int | None,
        response: Any,
        error_response: Any,
        attempts: int,
        error: str | None,
        error_class: ErrorClass | None,
        error_code: str | None,
        origin_error_class: ErrorClass | None,
        origin_error_code: str | None,
        elapsed: float,
        queued_seconds: float,
        endpoint: str,
        method: str,
        provider_message: str | None = None,
        retry_after: float | None = None,
    ) -> InvocationResult:
        """The constructor's result, made ~4× faster for the call path: a frozen dataclass sets
        each of its 18 fields through `object.__setattr__` (~2 µs a result here), so the fields
        are stored plainly in `_Unfrozen`, which has the same slots, and the object then becomes
        an InvocationResult (`__class__` assignment between identical layouts), frozen as any."""
        made: Any = _Unfrozen()
        made.action = action
        made.status = status
        made.ok = ok
        made.http_status = http_status
        made.response = response
        made.error_response = error_response
        made.attempts = attempts
        made.error = error
        made.error_class = error_class
        made.error_code = error_code
        made.origin_error_class = origin_error_class
        made.origin_error_code = origin_error_code
        made.elapsed = elapsed
        made.queued_seconds = queued_seconds
        made.endpoint = endpoint
        made.method = method
        made.provider_message = provider_message
        made.retry_after = retry_after
        made.__class__ = InvocationResult
        result: InvocationResult = made
        return result

    @classmethod
    def unsent(
        cls,
        action: str,
        message: str,
        code: str,
        *,
        endpoint: str = "",
        method: str = "",
        status: str = INTERNAL_ERROR,
        error_class: ErrorClass = "error",
    ) -> InvocationResult:
        """A call that ended before anything was sent: a secret not set, a journey mapping that
        failed, a fleet call that could not run."""
        return cls(
            action,
            status,
            False,
            None,
            None,
            None,
            0,
            message,
            error_class,
            code,
            None,
            None,
            0.0,
            0.0,
            endpoint,
            method,
        )

    @property
    def sent(self) -> bool:
        """Whether at least one request reached the endpoint (so it may have acted on it)."""
        return self.attempts > 0

    def as_journey_fields(self) -> dict[str, Any]:
        """The fields a journey reads after the node: the response's fields (when it is an
        object), `jo_status_code` and `errorResponse`."""
        response = self.response
        fields: dict[str, Any] = dict(response) if isinstance(response, dict) else {}
        fields["jo_status_code"] = self.status
        fields["errorResponse"] = self.error_response
        if self.retry_after is not None:
            fields["retryAfter"] = self.retry_after
        return fields

    def as_json(self) -> dict[str, Any]:
        """The result as JSON, in the API's camelCase names (the CLI's `invoke --json`)."""
        return {
            "action": self.action,
            "status": self.status,
            "ok": self.ok,
            "httpStatus": self.http_status,
            "response": self.response,
            "errorResponse": self.error_response,
            "attempts": self.attempts,
            "sent": self.attempts > 0,
            "error": self.error,
            "errorClass": self.error_class,
            "errorCode": self.error_code,
            "originErrorClass": self.origin_error_class,
            "originErrorCode": self.origin_error_code,
            "elapsed": round(self.elapsed, 6),
            "queuedSeconds": round(self.queued_seconds, 6),
            "method": self.method,
            "endpoint": self.endpoint,
        }

    def as_event(self) -> dict[str, Any]:
        """The step event: a flat JSON-able record of the call (no body, never a secret)."""
        return {
            "type": "actionrt.step",
            "time": time.time(),
            "action": self.action,
            "status": self.status,
            "ok": self.ok,
            "httpStatus": self.http_status,
            "attempts": self.attempts,
            "sent": self.attempts > 0,
            "errorClass": self.error_class,
            "errorCode": self.error_code,
            "originErrorClass": self.origin_error_class,
            "originErrorCode": self.origin_error_code,
            "error": self.error,
            "elapsed": round(self.elapsed, 6),
            "queuedSeconds": round(self.queued_seconds, 6),
            "endpoint": self.endpoint,
            "method": self.method,
            "retryAfter": self.retry_after,
        }


# `InvocationResult`'s slots, plainly assignable: see `InvocationResult.made`. Derived from the
# class, so a field added there is a slot here too.
_Unfrozen: Final = type("_Unfrozen", (), {"__slots__": InvocationResult.__slots__})
