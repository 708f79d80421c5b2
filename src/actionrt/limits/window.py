"""In-process counting primitives: the exact sliding window, the throttling pacer and the host
latency tracker.

A window stores the times of the calls it admitted in a ring that grows on demand up to its
limit, so any earlier call is found in O(1) and memory follows the calls actually in the window.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Final

__all__ = ["RECENT_CALLS", "LatencyTracker", "Pacer", "SlidingWindow"]

_INITIAL_CAPACITY: Final = 64


class SlidingWindow:
    """At most `limit` calls in any interval (t - period, t], for every t: not clock buckets.

    Times must never go backwards (a monotonic clock, or departure times handed out in order).
    Invariant: every recorded time still inside the window is kept; only times already out of
    the window are overwritten, and a time out of the window stays out since time only grows.
    """

    __slots__ = ("_capacity", "_head", "_size", "_times", "limit", "period")

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._capacity = min(limit, _INITIAL_CAPACITY)
        self._times: list[float] = [0.0] * self._capacity
        self._head = 0  # index of the oldest kept time
        self._size = 0

    def fits(self, now: float) -> bool:
        """Whether one more call at `now` keeps every window within the limit."""
        # Fewer than `limit` kept means fewer than `limit` inside the window (invariant);
        # otherwise the ring is full at `limit` and its oldest is the limit-th latest call.
        return self._size < self.limit or self._times[self._head] <= now - self.period

    def fits_within(self, now: float, limit: int, period: float) -> bool:
        """Whether one more call at `now` keeps `limit` per `period` (period <= self.period)."""
        latest = self.kth_latest(limit)
        return latest is None or latest <= now - period

    def kth_latest(self, k: int) -> float | None:
        """The time of the k-th latest recorded call (k=1: the last), if still kept."""
        if k > self._size:
            return None
        return self._times[(self._head + self._size - k) % self._capacity]

    def next_free(self, now: float) -> float:
        """The earliest time >= now at which one more call fits."""
        if self._size < self.limit:
            return now
        oldest = self._times[self._head] + self.period
        return oldest if oldest > now else now

    def record(self, now: float) -> None:
        """Count one call at `now` (the caller checked `fits`)."""
        size = self._size
        capacity = self._capacity
        if size < capacity:
            self._times[(self._head + size) % capacity] = now
            self._size = size + 1
        elif capacity == self.limit or self._times[self._head] <= now - self.period:
            # Full: the oldest is out of the window (or over the limit anyway): reuse its slot.
            head = self._head
            self._times[head] = now
            self._head = head + 1 if head + 1 < capacity else 0
        else:
            self._grow()
            self._times[self._size] = now
            self._size += 1

    def count(self, now: float) -> int:
        """Calls recorded in (now - period, now]; for reports and tests, O(log n)."""
        cutoff = now - self.period
        low, high = 0, self._size  # kept times are sorted from the oldest: bisect on them
        while low < high:
            middle = (low + high) // 2
            if self._times[(self._head + middle) % self._capacity] <= cutoff:
                low = middle + 1
            else:
                high = middle
        return self._size - low

    def _grow(self) -> None:
        ordered = self._times[self._head :] + self._times[: self._head]
        self._capacity = min(self.limit, self._capacity * 2)
        self._times = ordered + [0.0] * (self._capacity - len(ordered))
        self._head = 0


class Pacer:
    """Even departures: `rate` per `period`, one every `period / rate` seconds, the first at
    once (no burst, ever).

    `free` is the earliest time the next departure may have. Any interval (t - period, t] then
    holds at most `rate` departures wherever t falls, the first second included (a sliding
    window would let `rate` calls leave together at each edge). A busy run of departures is
    counted from its first one (`anchor + n * period / rate`), so rounding never accumulates
    into an extra call per window.
    """

    __slots__ = ("_anchor", "_booked", "free", "gap", "period", "rate", "released", "waiting")

    def __init__(self, rate: int, period: float) -> None:
        if rate < 1 or period <= 0:
            raise ValueError("a pacer needs rate >= 1 and period > 0")
        self.rate = rate
        self.period = period
        self.gap = 0.99 * period / rate
        """How close two calls may really leave (the slack of timers), on the memory backend."""
        self._anchor = -float("inf")
        self._booked = 0
        self.free = -float("inf")
        # When the last call really left (+ `gap`: when the next may), and how many wait on the
        # memory backend's departure board (which keeps both).
        self.released = -float("inf")
        self.waiting = 0

    def take(self, departure: float) -> None:
        """Book a departure at `departure` (>= `free`, which the caller read)."""
        if departure > self.free:  # idle until now (or held back by another rule): a new run
            self._anchor, self._booked = departure, 1
        else:
            self._booked += 1
        self.free = self._anchor + self._booked * self.period / self.rate


RECENT_CALLS: Final = 100
"""How many of a host's latest calls make its 'recent' median latency."""

_RECOMPUTE_EVERY: Final = 10
_MIN_SAMPLES: Final = 10


class LatencyTracker:
    """A host's recent latency: the median of its last `RECENT_CALLS` calls, judged against the
    threshold every ten calls (once ten are known).

    The tracker counts the kept samples over the threshold as they come and go, so the median
    is sorted out only when that count leaves it undecided (exactly half over, an even number
    kept): ~1,200 instructions a call against ~2,800 for a `statistics.median` every ten calls
    (callgrind instruction counts, the bench's call on a canned transport).
    """

    __slots__ = ("_over", "_samples", "_since", "slow", "threshold")

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.slow = False
        self._samples: deque[float] = deque(maxlen=RECENT_CALLS)
        self._over = 0  # kept samples over the threshold
        self._since = 0

    def record(self, seconds: float) -> None:
        samples = self._samples
        if len(samples) == RECENT_CALLS and samples[0] > self.threshold:
            self._over -= 1  # the oldest leaves as this one comes
        samples.append(seconds)
        if seconds > self.threshold:
            self._over += 1
        self._since += 1
        if self._since >= _RECOMPUTE_EVERY and len(samples) >= _MIN_SAMPLES:
            self._since = 0
            self.slow = self._median_over()

    def _median_over(self) -> bool:
        """Whether the median of the kept samples is over the threshold: surely so when more
        than half of them are, surely not when fewer than half are."""
        twice_over, kept = 2 * self._over, len(self._samples)
        if twice_over != kept:
            return twice_over > kept
        return statistics.median(self._samples) > self.threshold

    @property
    def median(self) -> float | None:
        return statistics.median(self._samples) if self._samples else None
