"""What travels through the queue: a submitted call (`QueuedCall`) and its result, as JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from actionrt.results import INTERNAL_ERROR, ErrorClass, InvocationResult

__all__ = ["QueuedCall", "call_id_for_key", "decode_result", "encode_result", "failed_result", "new_call_id"]

_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(InvocationResult))


def new_call_id() -> str:
    """A fresh call id (a call submitted without an idempotency key)."""
    return uuid.uuid4().hex


def call_id_for_key(idempotency_key: str) -> str:
    """The call id of an idempotency key: the same key always names the same call."""
    return "k" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:31]


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """One submitted call: what `Runtime.invoke` needs, and the call id that names it.

    The call id is also the value of the action's `idempotencyKey` header, so a call delivered
    twice (its first worker died) reaches the endpoint with the same key both times.
    """

    call_id: str
    action: str
    params: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    path: str | None = None
    timeout: float | None = None

    def encode(self) -> bytes:
        return json.dumps(
            [self.call_id, self.action, self.params, self.headers, self.query, self.path, self.timeout],
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> QueuedCall:
        """The call from its queued form; `ValueError` when it is not one (a foreign entry)."""
        try:
            call_id, action, params, headers, query, path, timeout = json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a queued call ({exc})") from None
        if not isinstance(call_id, str) or not isinstance(action, str):
            raise ValueError("not a queued call (call id and action must be strings)")
        return cls(call_id, action, params, headers, query, path, timeout)


def encode_result(result: InvocationResult) -> str:
    return json.dumps({name: getattr(result, name) for name in _RESULT_FIELDS}, separators=(",", ":"))


def decode_result(raw: bytes | str) -> InvocationResult:
    data = json.loads(raw)
    return InvocationResult(**{name: data[name] for name in _RESULT_FIELDS if name in data})


def failed_result(
    action: str,
    message: str,
    *,
    code: str = "fleet",
    error_class: ErrorClass = "error",
    status: str = INTERNAL_ERROR,
) -> InvocationResult:
    """The result of a call that could not run (its action failed to load, it was
    dead-lettered, its throttling wait was too long): nothing was sent."""
    return InvocationResult.unsent(action, message, code, status=status, error_class=error_class)
