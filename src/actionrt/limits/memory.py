"""The in-process backend (the default): exact sliding windows in this process's memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from actionrt.limits.admission import ADMITTED, Admission, GateSpec, queue_too_long
from actionrt.limits.window import SlidingWindow

__all__ = ["MemoryBackend", "MemoryGate"]


class MemoryBackend:
    """Counters for one process. `clock` is injectable (seconds, never going backwards)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[str, SlidingWindow] = {}

    def window(self, key: str, limit: int, period: float) -> SlidingWindow:
        """The window counting under `key`; a new one if the limit or period changed."""
        window = self._windows.get(key)
        if window is None or window.limit != limit or window.period != period:
            window = self._windows[key] = SlidingWindow(limit, period)
        return window

    def gate(self, spec: GateSpec) -> MemoryGate:
        return MemoryGate(self, spec)

    async def aclose(self) -> None:
        return None


class MemoryGate:
    """One endpoint's windows, resolved to objects so an attempt does no lookup."""

    __slots__ = (
        "_caps",
        "_clock",
        "_host",
        "_host_reason",
        "_latency",
        "_max_wait",
        "_sleep",
        "_slow_limit",
        "_slow_period",
        "_slow_reason",
        "_throttles",
    )

    def __init__(self, backend: MemoryBackend, spec: GateSpec) -> None:
        if spec.slow_host.period > spec.host.period:
            raise ValueError("the slow-host period must not exceed the host period")
        self._clock = backend.clock
        self._host = backend.window(spec.host.key, spec.host.limit, spec.host.period)
        self._host_reason = spec.host.reason
        self._slow_limit = spec.slow_host.limit
        self._slow_period = spec.slow_host.period
        self._slow_reason = spec.slow_host.reason
        self._latency = spec.latency
        self._caps = tuple(
            (backend.window(c.key, c.limit, c.period), c.reason) for c in spec.caps
        )
        self._throttles = tuple(
            backend.window(t.key, t.rate, t.period) for t in spec.throttles
        )
        self._max_wait = spec.max_queue_wait
        self._sleep = spec.sleep

    async def admit(self) -> Admission:
        now = self._clock()
        if self._throttles:
            return await self._admit_throttled(now)
        refused = self._refusal(now, 0.0)
        if refused is not None:
            return refused
        self._record(now)
        return ADMITTED

    def _refusal(self, now: float, queued: float) -> Admission | None:
        host = self._host
        if not host.fits(now):
            return Admission(True, queued, self._host_reason)
        if self._latency.slow and not host.fits_within(now, self._slow_limit, self._slow_period):
            return Admission(True, queued, self._slow_reason)
        for window, reason in self._caps:
            if not window.fits(now):
                return Admission(True, queued, reason)
        return None

    def _record(self, now: float) -> None:
        self._host.record(now)
        for window, _ in self._caps:
            window.record(now)

    async def _admit_throttled(self, now: float) -> Admission:
        # Over a cap already: fail at once rather than queue for a refusal.
        refused = self._refusal(now, 0.0)
        if refused is not None:
            return refused
        # Departure times are handed out in arrival order, so the queue is FIFO by construction.
        departure = now
        for window in self._throttles:
            free = window.next_free(now)
            if free > departure:
                departure = free
        wait = departure - now
        if wait > self._max_wait:
            return queue_too_long(wait, self._max_wait)
        for window in self._throttles:
            window.record(departure)
        if wait > 0:
            await self._sleep(wait)
            now = self._clock()
        refused = self._refusal(now, wait)
        if refused is not None:
            return refused
        self._record(now)
        return Admission(False, wait) if wait > 0 else ADMITTED
