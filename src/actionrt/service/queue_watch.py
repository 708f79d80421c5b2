"""The fleet queue's depth for the Monitoring page. With a fleet (`serve --redis`) the service
state holds a queue depth source (`Queue.depth`); a background task reads it every
`INTERVAL` seconds, and each time the page asks, into a `QueueTimeline`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from actionrt.observability.queue_timeline import QueueTimeline

if TYPE_CHECKING:
    from actionrt.fleet.engine import QueueDepth

log = logging.getLogger("actionrt.service")

QueueDepthSource = Callable[[], Awaitable["QueueDepth"]]
"""Reads a queue's depth now, such as `actionrt.Queue(...).depth`."""

INTERVAL = 15.0
"""Seconds between two readings (the Monitoring page refreshes as often)."""


class QueueWatch:
    """Reads `source()` (None: the service has no fleet) into `timeline`."""

    def __init__(
        self, source: Callable[[], QueueDepthSource | None], timeline: QueueTimeline | None = None
    ) -> None:
        self.source = source
        self.timeline = timeline if timeline is not None else QueueTimeline()
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False

    @property
    def fleet(self) -> bool:
        return self.source() is not None

    async def sample(self) -> bool:
        """Read the depth once; False without a fleet or when the queue is unreachable (said
        once in the log until it answers again)."""
        read = self.source()
        if read is None:
            return False
        try:
            depth = await read()
        except (ConnectionError, OSError) as exc:  # QueueUnavailableError is a ConnectionError
            if not self._unreachable:
                log.warning("the queue's depth could not be read: %s", exc)
            self._unreachable = True
            return False
        self._unreachable = False
        self.timeline.record(depth.queue, depth.waiting, depth.dead)
        return True

    async def run(self, interval: float = INTERVAL) -> None:
        """Read every `interval` seconds until cancelled."""
        while True:
            await self.sample()
            await asyncio.sleep(interval)

    def start(self, interval: float = INTERVAL) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(interval), name="actionrt-queue-depth"
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
