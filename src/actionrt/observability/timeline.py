"""`Timeline`: the figures of the console's Monitoring page, kept in memory per minute — calls by
status, latency quantiles, errors by class and code, capped and throttled counts — overall and
per action, for the last hour (one-minute steps) and the last 24 hours (15-minute steps).

It is an event sink: `Runtime(..., event_sinks=[timeline])` feeds it one step event per call;
the service counts its calls' results directly (`count`).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from actionrt.results import InvocationResult

__all__ = ["LATENCY_BOUNDS", "WINDOWS", "Timeline"]

Window = Literal["hour", "day"]
WINDOWS: Final[dict[str, tuple[int, int]]] = {"hour": (60, 60), "day": (900, 96)}
"""Each window's step (seconds) and number of steps."""
KEEP_MINUTES: Final = 24 * 60 + 15

# Latency buckets: 1 ms to ~100 s, each 25% wider than the last; a call counts in the first
# whose bound is not below its latency (`bisect_left`), the last one past ~100 s. A quantile is
# read as the upper bound of its bucket (so within 25% above the true value).
LATENCY_BOUNDS: Final = tuple(0.001 * 1.25**i for i in range(52))


class _Minute:
    """One action's calls in one minute."""

    __slots__ = ("by_status", "capped", "errors", "latency", "throttled")

    def __init__(self) -> None:
        self.by_status: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = [0] * (len(LATENCY_BOUNDS) + 1)
        self.capped = 0
        self.throttled = 0

    def add(self, other: _Minute) -> None:
        for status, count in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + count
        for error, count in other.errors.items():
            self.errors[error] = self.errors.get(error, 0) + count
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]
        self.capped += other.capped
        self.throttled += other.throttled


class Timeline:
    """Per-minute figures of recent calls (at most `max_actions` actions; the oldest minutes
    are dropped after 24 h). Thread-safe; `clock` is the wall clock (tests pass their own)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_actions: int = 1000) -> None:
        self.clock = clock
        self.max_actions = max_actions
        self._minutes: dict[str, dict[int, _Minute]] = {}
        self._lock = threading.Lock()

    def emit(self, event: Mapping[str, Any]) -> None:
        """Count one step event (the runtime's `as_event()` of a result)."""
        self._count(
            event["action"],
            event["status"],
            bool(event.get("ok")),
            event.get("elapsed") or 0.0,
            event.get("errorClass"),
            event.get("errorCode"),
            bool(event.get("queuedSeconds")),
        )

    def count(self, result: InvocationResult) -> None:
        """Count one call from its result, as `emit` counts its step event. The service counts
        its calls this way: the event's dict costs ~8,000 instructions a call (callgrind)."""
        self._count(
            result.action,
            result.status,
            result.ok,
            result.elapsed,
            result.error_class,
            result.error_code,
            bool(result.queued_seconds),
        )

    def _count(
        self,
        action: str,
        status: str,
        ok: bool,
        elapsed: float,
        error_class: str | None,
        error_code: str | None,
        throttled: bool,
    ) -> None:
        minute = int(self.clock() // 60)
        bucket = bisect_left(LATENCY_BOUNDS, elapsed)
        with self._lock:
            slots = self._minutes.get(action)
            if slots is None:
                if len(self._minutes) >= self.max_actions:
                    return
                slots = self._minutes[action] = {}
            slot = slots.get(minute)
            if slot is None:
                slot = slots[minute] = _Minute()
                for old in [m for m in slots if m <= minute - KEEP_MINUTES]:
                    del slots[old]
            by_status = slot.by_status
            by_status[status] = by_status.get(status, 0) + 1
            if not ok:
                error = f"{error_class or 'error'}/{error_code or status}"
                slot.errors[error] = slot.errors.get(error, 0) + 1
            slot.latency[bucket] += 1
            if status == "capped":
                slot.capped += 1
            if throttled:
                slot.throttled += 1

    def actions(self) -> list[str]:
        with self._lock:
            return sorted(self._minutes)

    def series(self, window: Window = "hour", action: str | None = None) -> dict[str, Any]:
        """The Monitoring page's data for `window`, for `action` or (None) all of them:
        per-step `calls` by status, `latency` p50/p95/p99 (seconds, None without calls),
        `capped`, `throttled`; `errors` totals by `class/code` over the window."""
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        step, count = WINDOWS[window]
        per_step = step // 60
        last = int(self.clock() // step)  # the step in progress is the last one shown
        first = last - count + 1
        steps = [_Minute() for _ in range(count)]
        with self._lock:
            sources = [self._minutes.get(action, {})] if action is not None else list(self._minutes.values())
            for slots in sources:
                for minute, slot in slots.items():
                    index = minute // per_step - first
                    if 0 <= index < count:
                        steps[index].add(slot)
        statuses = sorted({s for slot in steps for s in slot.by_status})
        errors: dict[str, int] = {}
        for slot in steps:
            for error, n in slot.errors.items():
                errors[error] = errors.get(error, 0) + n
        return {
            "window": window,
            "action": action,
            "step": step,
            "times": [(first + i) * step for i in range(count)],
            "calls": {status: [slot.by_status.get(status, 0) for slot in steps] for status in statuses},
            "latency": {
                name: [_quantile(slot.latency, q) for slot in steps]
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "errors": dict(sorted(errors.items(), key=lambda item: -item[1])),
            "capped": [slot.capped for slot in steps],
            "throttled": [slot.throttled for slot in steps],
            "total": sum(sum(slot.by_status.values()) for slot in steps),
        }


def _quantile(buckets: list[int], q: float) -> float | None:
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(buckets):
        seen += n
        if seen >= rank:
            return round(LATENCY_BOUNDS[min(index, len(LATENCY_BOUNDS) - 1)], 6)
    return round(LATENCY_BOUNDS[-1], 6)
