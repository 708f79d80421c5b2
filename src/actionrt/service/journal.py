"""The record of recent calls, kept off the request path: a call's row goes into an in-memory
ring, and one background task writes what has gathered in one SQLite transaction, in a worker
thread, while the next rows gather. Reads flush first, so they see every finished call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from actionrt.service.store import CallRow, Store

log = logging.getLogger("actionrt.service")

# Rows waiting for the writer at most; beyond it the oldest are dropped (and counted), so a
# stalled disk costs recent-call rows, never memory or call latency.
RING_SIZE = 65_536
# The writer gathers rows this long between transactions: at thousands of calls/s, one
# transaction (and one hop to the worker thread) per batch of many rows, not per loop tick.
BATCH_INTERVAL = 0.05


class CallJournal:
    """Recent-call rows on their way to the store."""

    def __init__(self, store: Store, ring_size: int = RING_SIZE, interval: float = BATCH_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._pending: deque[CallRow] = deque(maxlen=ring_size)
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None
        self.dropped = 0

    def add(self, row: CallRow) -> None:
        """Queue one row (no I/O)."""
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(row)
        self._wake.set()

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="actionrt-call-journal")

    async def flush(self) -> None:
        """Write every row queued so far (and wait for a batch already being written)."""
        while self._writing is not None:
            await asyncio.shield(self._writing)
        await self._write_batch()

    async def aclose(self) -> None:
        """Stop the writer and write what is left."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a failing disk must not stop later batches
                log.exception("writing recent calls failed")
            await asyncio.sleep(self.interval)  # reads flush first: they never wait for it

    async def _write_batch(self) -> None:
        if not self._pending:
            return
        rows = list(self._pending)
        self._pending.clear()
        loop = asyncio.get_running_loop()
        self._writing = loop.create_future()
        try:
            await asyncio.to_thread(self.store.add_calls, rows)
        finally:
            self._writing.set_result(None)
            self._writing = None
