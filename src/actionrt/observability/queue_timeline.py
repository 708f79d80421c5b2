"""`QueueTimeline`: a fleet queue's depth and dead letters over time, for the console's
Monitoring page — one sample kept per minute (the last read in it), shown for the last hour
by minute and the last 24 hours by 15 minutes (the deepest minute of each step)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from actionrt.observability.timeline import KEEP_MINUTES, WINDOWS, Window

__all__ = ["QueueTimeline"]


class QueueTimeline:
    """Per-minute samples of one queue's depth. Thread-safe; `clock` is the wall clock (tests
    pass their own)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.queue: str | None = None
        self._minutes: dict[int, tuple[int, int]] = {}  # minute -> (waiting, dead)
        self._last: tuple[float, int, int] | None = None
        self._lock = threading.Lock()

    def record(self, queue: str, waiting: int, dead: int) -> None:
        """One reading of the queue: `waiting` calls and `dead` letters, now."""
        now = self.clock()
        minute = int(now // 60)
        with self._lock:
            self.queue = queue
            if minute not in self._minutes:
                for old in [m for m in self._minutes if m <= minute - KEEP_MINUTES]:
                    del self._minutes[old]
            self._minutes[minute] = (waiting, dead)
            self._last = (now, waiting, dead)

    def series(self, window: Window = "hour") -> dict[str, Any]:
        """The Monitoring page's queue data for `window`: per-step `waiting` and `dead` (None
        where nothing was read), and the `last` reading (`at`, `waiting`, `dead`) or None."""
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        step, count = WINDOWS[window]
        per_step = step // 60
        last_step = int(self.clock() // step)
        first = last_step - count + 1
        waiting: list[int | None] = [None] * count
        dead: list[int | None] = [None] * count
        with self._lock:
            for minute, (queued, lost) in self._minutes.items():
                index = minute // per_step - first
                if 0 <= index < count:
                    waiting[index] = max(queued, waiting[index] or 0)
                    dead[index] = max(lost, dead[index] or 0)
            last = self._last
            queue = self.queue
        return {
            "window": window,
            "queue": queue,
            "step": step,
            "times": [(first + i) * step for i in range(count)],
            "waiting": waiting,
            "dead": dead,
            "last": None if last is None else {"at": last[0], "waiting": last[1], "dead": last[2]},
        }
