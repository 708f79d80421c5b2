"""The call journal: rows written by a writer thread in batches, reads flushing first."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from actionrt.service.journal import CallJournal
from actionrt.service.store import CallRow, Store


def row(at: float) -> CallRow:
    return CallRow(0, "notify", at, "invoke", "http_200", True, 200, 1, 0.01, None, None)


class WatchedStore(Store):
    """A store that tells each batch it is given, and can hold the first one."""

    def __init__(self, path: Path, hold: bool = False) -> None:
        super().__init__(path)
        self.batches: list[list[float]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.written = threading.Event()
        if not hold:
            self.release.set()

    def add_calls(self, rows: list[CallRow]) -> None:
        self.entered.set()
        assert self.release.wait(10)
        super().add_calls(rows)
        self.batches.append([r.at for r in rows])
        self.written.set()


async def test_the_writer_writes_rows_no_read_asked_for(tmp_path: Path) -> None:
    store = WatchedStore(tmp_path / "store.db")
    journal = CallJournal(store)
    journal.start()
    try:
        journal.add(row(1.0))
        assert await asyncio.to_thread(store.written.wait, 10)
        assert [r.at for r in store.recent_calls("notify")] == [1.0]
    finally:
        await journal.aclose()


async def test_a_flush_writes_every_row_after_the_batch_being_written(tmp_path: Path) -> None:
    store = WatchedStore(tmp_path / "store.db", hold=True)
    journal = CallJournal(store, interval=3600)  # the writer's next batch: not in this test
    journal.start()
    try:
        journal.add(row(1.0))
        assert await asyncio.to_thread(store.entered.wait, 10)  # the writer holds [1.0]
        journal.add(row(2.0))
        journal.add(row(3.0))
        flushed = asyncio.create_task(journal.flush())
        store.release.set()
        await flushed
        assert store.batches == [[1.0], [2.0, 3.0]]
    finally:
        await journal.aclose()
    assert store.batches == [[1.0], [2.0, 3.0]]


async def test_closing_writes_what_is_left(tmp_path: Path) -> None:
    store = WatchedStore(tmp_path / "store.db")
    journal = CallJournal(store)  # never started: nothing written until closed
    journal.add(row(1.0))
    journal.add(row(2.0))
    assert store.batches == []
    await journal.aclose()
    assert store.batches == [[1.0, 2.0]]
