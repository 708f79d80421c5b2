"""The calls' deadlines: one timer per timeout value, not one per call.

Calls with the same timeout expire in the order they started, so a queue per timeout value
and one loop timer at its oldest deadline serve them all. `asyncio.timeout` pushes a timer on
the loop's heap per call and cancels it after: ~4 µs a call at concurrency 64 here, against
~1.2 µs for this (`uv run python bench/deadlines.py`). The semantics are `asyncio.timeout`'s: the
task is cancelled at the deadline and the cancellation leaves the block as `TimeoutError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Final

__all__ = ["Deadline", "Deadlines"]

_COMPACT_SLACK: Final = 64
"""Ended deadlines a queue may hold past twice its running ones (at its last compaction)."""


class Deadline:
    """One call's deadline (`when`, loop time): a `with` block that the deadline cancels,
    leaving it as `TimeoutError`. Made by `Deadlines.start`."""

    __slots__ = ("_cancelling", "_expired", "_task", "_when")

    def __init__(self, when: float, task: asyncio.Task[object]) -> None:
        self._when = when
        self._task: asyncio.Task[object] | None = task  # None once the block has ended
        self._cancelling = task.cancelling()
        self._expired = False

    def when(self) -> float:
        """The deadline, in the loop's time."""
        return self._when

    def expired(self) -> bool:
        """Whether the deadline passed and cancelled the block."""
        return self._expired

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        self._task = None  # ended: its lane drops it when it meets it
        if not self._expired or task is None:
            return
        # As asyncio.timeout: the cancellation is ours unless someone else cancelled too.
        if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _expire(self) -> None:
        task = self._task
        if task is not None:
            self._expired = True
            task.cancel()


class _Lane:
    """The deadlines of one timeout value on one loop, oldest first, and the one timer set at
    the oldest. An ended deadline stays until it reaches the front, or until the queue is
    compacted: when it has grown past twice its running deadlines at the last compaction (and
    some slack), so a long call does not hold the ended ones behind it. An ending call does no
    bookkeeping here: ~1,100 instructions less a call than counting the running ones
    (callgrind, the bench's call on a canned transport)."""

    __slots__ = ("_compact_at", "_loop", "_queue", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[Deadline] = deque()
        self._compact_at = _COMPACT_SLACK
        self._timer: asyncio.TimerHandle | None = None

    def add(self, deadline: Deadline) -> None:
        queue = self._queue
        while queue and queue[0]._task is None:
            queue.popleft()
        if len(queue) > self._compact_at:
            queue = self._queue = deque(d for d in queue if d._task is not None)
            self._compact_at = 2 * len(queue) + _COMPACT_SLACK
        queue.append(deadline)
        if self._timer is None:
            self._timer = self._loop.call_at(queue[0]._when, self._fire)

    def idle(self) -> bool:
        """Whether none of its deadlines is running."""
        return all(d._task is None for d in self._queue)

    def _fire(self) -> None:
        self._timer = None
        queue = self._queue
        now = self._loop.time()
        while queue:
            head = queue[0]
            if head._task is None:
                queue.popleft()
            elif head._when <= now:
                queue.popleft()
                head._expire()
            else:
                self._timer = self._loop.call_at(head._when, self._fire)
                break


class Deadlines:
    """The deadlines of one runtime's calls: `with deadlines.start(seconds):` around what the
    deadline bounds (in a task)."""

    __slots__ = ("_lanes",)

    def __init__(self) -> None:
        self._lanes: dict[tuple[asyncio.AbstractEventLoop, float], _Lane] = {}

    def start(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now for the current task."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        lane = self._lanes.get((loop, seconds))
        if lane is None:
            if len(self._lanes) >= _MAX_LANES:
                self._drop_idle_lanes()
            lane = self._lanes[loop, seconds] = _Lane(loop)
        deadline = Deadline(loop.time() + seconds, task)
        lane.add(deadline)
        return deadline

    def _drop_idle_lanes(self) -> None:
        for key, lane in list(self._lanes.items()):
            if lane.idle():
                if lane._timer is not None:
                    lane._timer.cancel()
                del self._lanes[key]


_MAX_LANES: Final = 256
"""Lanes kept before idle ones are dropped (a caller may pass any timeout from 1 to 30 s)."""
