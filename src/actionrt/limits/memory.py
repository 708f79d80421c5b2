"""The in-process backend (the default): exact sliding windows in this process's memory."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable

from actionrt.limits.admission import ADMITTED, Admission, GateSpec, queue_too_long
from actionrt.limits.window import Pacer, SlidingWindow

__all__ = ["DepartureBoard", "MemoryBackend", "MemoryGate"]


class MemoryBackend:
    """Counters for one process. `clock` is injectable (seconds, never going backwards)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[str, SlidingWindow] = {}
        self._pacers: dict[str, Pacer] = {}
        self.departures = DepartureBoard(clock)

    def window(self, key: str, limit: int, period: float) -> SlidingWindow:
        """The window counting under `key`; a new one if the limit or period changed."""
        window = self._windows.get(key)
        if window is None or window.limit != limit or window.period != period:
            window = self._windows[key] = SlidingWindow(limit, period)
        return window

    def pacer(self, key: str, rate: int, period: float) -> Pacer:
        """The pacer of the throttling rule under `key`; a new one if its rate changed."""
        pacer = self._pacers.get(key)
        if pacer is None or pacer.rate != rate or pacer.period != period:
            pacer = self._pacers[key] = Pacer(rate, period)
        return pacer

    def gate(self, spec: GateSpec) -> MemoryGate:
        return MemoryGate(self, spec)

    def connection_gate(self, key: str, limit: int) -> asyncio.Semaphore:
        """A `maxHttpConnections` gate for this process's calls."""
        return asyncio.Semaphore(limit)

    async def aclose(self) -> None:
        return None


class DepartureBoard:
    """Wakes queued calls at their departure times in (departure, arrival) order.

    One timer for the earliest departure, one clock reading per release: per-call timers
    could wake two calls a few microseconds apart in the wrong order. A call also waits until
    its pacers' previous call really left at least 0.99 of an interval before (`Pacer.gap`): when the
    loop wakes late (a busy process, a starved CPU), the calls that fell due meanwhile leave one
    by one again instead of together, so the partner sees no burst. They keep their order.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, asyncio.Future[None], tuple[Pacer, ...]]] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait_until(self, departure: float, pacers: tuple[Pacer, ...] = ()) -> None:
        loop = self._loop = asyncio.get_running_loop()
        released = loop.create_future()
        heapq.heappush(self._heap, (departure, next(self._arrivals), released, pacers))
        for pacer in pacers:
            pacer.waiting += 1
        if departure < self._armed_for:
            self._arm(loop, departure)
        await released

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = when
        self._timer = loop.call_later(max(0.0, when - self._clock()), self._release)

    def _release(self) -> None:
        self._timer, self._armed_for = None, math.inf
        now = self._clock()
        heap = self._heap
        held: list[tuple[float, int, asyncio.Future[None], tuple[Pacer, ...]]] = []
        blocked: set[Pacer] = set()  # pacers with a held call: the calls behind it wait too
        wake = math.inf
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            released, pacers = entry[2], entry[3]
            if released.done():  # a cancelled call simply leaves the queue
                for pacer in pacers:
                    pacer.waiting -= 1
                continue
            if blocked.intersection(pacers):
                held.append(entry)
                continue
            ready = ready_at(pacers, now)
            if ready > now:  # its pacer's previous call left too recently: later, in order
                held.append(entry)
                blocked.update(pacers)
                wake = min(wake, ready)
                continue
            released.set_result(None)
            for pacer in pacers:
                pacer.waiting -= 1
                pacer.released = now
        if heap:
            wake = min(wake, heap[0][0])
        for entry in held:  # back with their own departure: the order stays first in, first out
            heapq.heappush(heap, entry)
        if wake < math.inf and self._loop is not None:
            self._arm(self._loop, wake)


def ready_at(pacers: tuple[Pacer, ...], now: float) -> float:
    """The earliest time >= now at which the pacers' previous calls left long enough ago."""
    ready = now
    for pacer in pacers:
        earliest = pacer.released + pacer.gap
        if earliest > ready:
            ready = earliest
    return ready


class MemoryGate:
    """One endpoint's windows, resolved to objects so an attempt does no lookup."""

    __slots__ = (
        "_caps",
        "_clock",
        "_departures",
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
        self._caps = tuple((backend.window(c.key, c.limit, c.period), c.reason) for c in spec.caps)
        self._throttles = tuple(backend.pacer(t.key, t.rate, t.period) for t in spec.throttles)
        self._max_wait = spec.max_queue_wait
        self._sleep = spec.sleep
        self._departures = backend.departures

    def admit_now(self) -> Admission | None:
        """The answer without a throttling rule, at once; None with one (it may queue)."""
        if self._throttles:
            return None
        now = self._clock()
        refused = self._refusal(now, 0.0)
        if refused is not None:
            return refused
        self._record(now)
        return ADMITTED

    async def admit(self) -> Admission:
        admission = self.admit_now()
        if admission is None:
            return await self._admit_throttled(self._clock())
        return admission

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
        # Departure times are handed out in arrival order, so the queue is FIFO by construction;
        # each rule's pacer spaces them evenly.
        departure = now
        board = False  # must it go by the departure board (calls waiting there, or too soon)?
        for pacer in self._throttles:
            if pacer.free > departure:
                departure = pacer.free
            if pacer.waiting or pacer.released + pacer.gap > now:
                board = True
        wait = departure - now
        if wait > self._max_wait:
            return queue_too_long(wait, self._max_wait)
        for pacer in self._throttles:
            pacer.take(departure)
        if self._sleep is not None:  # a test's sleep: planned times only
            if wait > 0:
                await self._sleep(wait)
                now = self._clock()
        elif wait > 0 or board:
            # Behind calls still on the board (due, but not yet woken): after them, in order.
            await self._departures.wait_until(departure, self._throttles)
            now = self._clock()
        else:
            for pacer in self._throttles:
                pacer.released = now
        refused = self._refusal(now, wait)
        if refused is not None:
            return refused
        self._record(now)
        return Admission(False, wait) if wait > 0 else ADMITTED
