"""The store's recent calls: the last `RECENT_CALLS_KEPT` of each action, whatever the batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actionrt.service import store as store_module
from actionrt.service.store import CallRow, Store

KEPT = 5


@pytest.fixture(autouse=True)
def few_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "RECENT_CALLS_KEPT", KEPT)


def rows(action: str, first: int, count: int) -> list[CallRow]:
    """`count` calls of `action`, told apart by their `at` (first, first + 1, ...)."""
    return [
        CallRow(0, action, float(at), "invoke", "http_200", True, 200, 1, 0.01, None, f"c-{at}")
        for at in range(first, first + count)
    ]


def kept(store: Store, action: str) -> list[float]:
    return [row.at for row in store.recent_calls(action, limit=100)]


def test_each_action_keeps_its_last_calls_whatever_the_batches(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    store.add_calls(rows("a", 0, 3))
    store.add_calls(rows("a", 3, 1) + rows("b", 100, 2))
    assert kept(store, "a") == [3.0, 2.0, 1.0, 0.0]
    store.add_calls(rows("a", 4, 3) + rows("b", 102, 9))  # past the limit in one batch and over two
    assert kept(store, "a") == [6.0, 5.0, 4.0, 3.0, 2.0]
    assert kept(store, "b") == [110.0, 109.0, 108.0, 107.0, 106.0]
    store.close()
    again = Store(tmp_path / "store.db")  # counts what it finds before it trims
    again.add_calls(rows("a", 7, 1))
    assert kept(again, "a") == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert again.counts()["calls"] == 2 * KEPT
    again.close()


def test_renamed_calls_count_for_their_new_action(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    store.add_calls(rows("old", 0, 4) + rows("new", 10, 3))
    with store.transaction() as tx:
        tx.rename_calls("old", "new")  # seven calls of "new" now
    store.add_calls(rows("new", 20, 1))
    assert kept(store, "new") == [20.0, 12.0, 11.0, 10.0, 3.0]
    assert kept(store, "old") == []
    store.add_calls(rows("old", 30, 2))
    assert kept(store, "old") == [31.0, 30.0]
    store.close()


def test_a_batch_that_fails_leaves_the_counts_as_they_were(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    store.add_calls(rows("a", 0, KEPT))
    broken = CallRow(0, "a", 99.0, "neither", "http_200", True, 200, 1, 0.01, None, None)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint"):
        store.add_calls([*rows("a", 5, 2), broken])  # rolled back: still five calls of "a"
    store.add_calls(rows("a", 7, 1))
    assert kept(store, "a") == [7.0, 4.0, 3.0, 2.0, 1.0]
    store.close()


def test_a_batch_larger_than_one_insert_is_written_whole_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "RECENT_CALLS_KEPT", 1000)
    store = Store(tmp_path / "store.db")
    count = 2 * store_module.ROWS_PER_INSERT + 3
    store.add_calls(rows("a", 0, count))
    found = store.recent_calls("a", limit=1000)
    assert [row.at for row in found] == [float(at) for at in reversed(range(count))]
    assert found[0] == CallRow(
        found[0].id, "a", count - 1.0, "invoke", "http_200", True, 200, 1, 0.01, None, f"c-{count - 1}"
    )
    store.close()


def test_calls_a_batch_would_trim_at_once_are_never_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    store.add_calls(rows("a", 0, 40) + rows("b", 100, 2) + rows("a", 40, 10))
    assert kept(store, "a") == [49.0, 48.0, 47.0, 46.0, 45.0]
    assert kept(store, "b") == [101.0, 100.0]
    # Seven rows inserted in all, in call order (the table's ids), not 52 inserted and 45 deleted.
    assert [row.id for row in store.recent_calls("b")] == [2, 1]
    assert [row.id for row in store.recent_calls("a")] == [7, 6, 5, 4, 3]
    store.close()
