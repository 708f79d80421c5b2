"""The service's SQLite store: actions and journeys as JSON documents, capping and throttling
rules, sealed secrets and recent calls. Every change goes through one `transaction()`."""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    name TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journeys (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS limit_rules (
    uid TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('capping', 'throttling')),
    document TEXT NOT NULL,
    deployed INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    id TEXT PRIMARY KEY,
    ciphertext BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invoke', 'test')),
    status TEXT NOT NULL,
    ok INTEGER NOT NULL,
    http_status INTEGER,
    attempts INTEGER NOT NULL,
    elapsed REAL NOT NULL,
    error TEXT,
    call_id TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_action ON calls (action, id);
"""

# Columns added after a table's first release: (table, column, its definition). A store
# written before gets them on open (`ALTER TABLE ... ADD COLUMN`; old rows read NULL).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("calls", "call_id", "TEXT"),)

# Recent calls kept per action: enough for the console's counts, bounded so the store stays small.
RECENT_CALLS_KEPT = 500
# Recent-call rows written by one INSERT at most (10 values each; one statement per count).
ROWS_PER_INSERT = 64


@dataclass(frozen=True, slots=True)
class RuleRow:
    uid: str
    kind: str
    document: dict[str, Any]
    deployed: bool


class CallRow(NamedTuple):
    """One recent call (`id` 0 until stored). A tuple: one is made per call, and a frozen
    dataclass of these fields costs 18,700 instructions to make against 5,100 (callgrind)."""

    id: int
    action: str
    at: float
    kind: str
    status: str
    ok: bool
    http_status: int | None
    attempts: int
    elapsed: float
    error: str | None
    call_id: str | None = None  # its details: GET /actions/{name}/calls/{callId} (while kept)


class Store:
    """One SQLite file. Reads are plain queries; writes happen inside `transaction()` only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop thread and from worker threads that run
        # blocking work; the lock keeps their statements from interleaving.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        # WAL with NORMAL: a commit is durable against a crash of the process, and fsyncs only
        # at checkpoints (a power cut may lose the last commits, never corrupt the file).
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        self._lock = threading.RLock()
        # Rows of `calls` per action as `add_calls` last left them, so that it trims only what
        # it must; a transaction that moves calls (`rename_calls`) forgets its actions' counts.
        self._calls_kept: dict[str, int] = {}

    def _add_missing_columns(self) -> None:
        """Bring a store written by an earlier version up to `SCHEMA` (in one transaction)."""
        missing = [
            (table, column, definition)
            for table, column, definition in ADDED_COLUMNS
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        ]
        if not missing:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for table, column, definition in missing:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All writes of one request: committed together, or none of them on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db, self._calls_kept)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_calls(self, rows: list[CallRow]) -> None:
        """Append recent-call rows in one transaction; keep the last `RECENT_CALLS_KEPT` of
        each action they touch.

        Trimming finds the oldest rows past the limit from a count of each action's rows kept
        between batches, walking just those in the index: finding the limit's row from the
        newest walks 500 entries per action per batch. A batch of 5 rows, 500 kept: 426,000
        instructions that way, 237,000 this way (callgrind)."""
        rows = newest_calls(rows, RECENT_CALLS_KEPT)
        added: dict[str, int] = {}
        for row in rows:
            added[row.action] = added.get(row.action, 0) + 1
        counted: dict[str, int] = {}
        with self._lock:
            with self.transaction() as tx:
                tx.add_calls(rows)
                for action, count in added.items():
                    kept = self._calls_kept.get(action)
                    kept = tx.count_calls(action) if kept is None else kept + count
                    if kept > RECENT_CALLS_KEPT:
                        tx.drop_oldest_calls(action, kept - RECENT_CALLS_KEPT)
                        kept = RECENT_CALLS_KEPT
                    counted[action] = kept
            self._calls_kept.update(counted)  # once committed

    # -- reads ---------------------------------------------------------------------------------

    def _all(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def meta(self, key: str) -> str | None:
        rows = self._all("SELECT value FROM meta WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    def action_documents(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(doc) for name, doc in self._all("SELECT name, document FROM actions")}

    def journey_documents(self) -> dict[str, dict[str, Any]]:
        return {jid: json.loads(doc) for jid, doc in self._all("SELECT id, document FROM journeys")}

    def rules(self) -> list[RuleRow]:
        rows = self._all("SELECT uid, kind, document, deployed FROM limit_rules ORDER BY created_at, uid")
        return [RuleRow(uid, kind, json.loads(doc), bool(deployed)) for uid, kind, doc, deployed in rows]

    def rule(self, uid: str) -> RuleRow | None:
        return next((r for r in self.rules() if r.uid == uid), None)

    def ciphertext(self, secret_id: str) -> bytes | None:
        rows = self._all("SELECT ciphertext FROM secrets WHERE id = ?", secret_id)
        return bytes(rows[0][0]) if rows else None

    def secret_ids(self) -> set[str]:
        return {row[0] for row in self._all("SELECT id FROM secrets")}

    def recent_calls(self, action: str, limit: int = 50) -> list[CallRow]:
        rows = self._all(
            "SELECT id, action, at, kind, status, ok, http_status, attempts, elapsed, error, call_id "
            "FROM calls WHERE action = ? ORDER BY id DESC LIMIT ?",
            action,
            limit,
        )
        return [
            CallRow(i, a, at, kind, status, bool(ok), http, attempts, elapsed, error, call_id)
            for i, a, at, kind, status, ok, http, attempts, elapsed, error, call_id in rows
        ]

    def call_counts(self, action: str) -> dict[str, int]:
        rows = self._all(
            "SELECT status, COUNT(*) FROM calls WHERE action = ? GROUP BY status ORDER BY status", action
        )
        return {status: count for status, count in rows}

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and the health endpoint)."""
        tables = ("actions", "journeys", "limit_rules", "secrets", "calls")
        with self._lock:
            return {t: int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}


class Transaction:
    """The writes of one transaction."""

    def __init__(self, db: sqlite3.Connection, calls_kept: dict[str, int]) -> None:
        self._db = db
        self._calls_kept = calls_kept
        self._now = time.time()

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    def put_action(self, name: str, document: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO actions (name, document, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            (name, json.dumps(document), self._now),
        )

    def delete_action(self, name: str) -> None:
        self._db.execute("DELETE FROM actions WHERE name = ?", (name,))

    def put_journey(self, journey_id: str, document: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO journeys (id, document, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            (journey_id, json.dumps(document), self._now),
        )

    def delete_journey(self, journey_id: str) -> None:
        self._db.execute("DELETE FROM journeys WHERE id = ?", (journey_id,))

    def put_secret(self, secret_id: str, ciphertext: bytes) -> None:
        self._db.execute(
            "INSERT INTO secrets (id, ciphertext, created_at) VALUES (?, ?, ?)",
            (secret_id, ciphertext, self._now),
        )

    def keep_secrets(self, referenced: set[str]) -> None:
        """Delete every secret no action references any more."""
        stored = {row[0] for row in self._db.execute("SELECT id FROM secrets")}
        for secret_id in stored - referenced:
            self._db.execute("DELETE FROM secrets WHERE id = ?", (secret_id,))

    def put_rule(self, uid: str, kind: str, document: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO limit_rules (uid, kind, document, deployed, created_at) VALUES (?, ?, ?, 0, ?) "
            "ON CONFLICT (uid) DO NOTHING",
            (uid, kind, json.dumps(document), self._now),
        )

    def set_deployed(self, uid: str, deployed: bool) -> None:
        self._db.execute("UPDATE limit_rules SET deployed = ? WHERE uid = ?", (int(deployed), uid))

    def delete_rule(self, uid: str) -> None:
        self._db.execute("DELETE FROM limit_rules WHERE uid = ?", (uid,))

    def add_calls(self, rows: list[CallRow]) -> None:
        # Many rows a statement: 21,000 instructions a row against 30,700 one statement each
        # (`executemany`; batches of 50, callgrind). A statement per batch size, cached.
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            # All but the id, which the table gives.
            self._db.execute(_insert_calls(len(chunk)), [value for row in chunk for value in row[1:]])

    def count_calls(self, action: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM calls WHERE action = ?", (action,)).fetchone()[0])

    def drop_oldest_calls(self, action: str, count: int) -> None:
        """Delete the action's `count` oldest calls (a walk of `count` index entries)."""
        self._db.execute(
            "DELETE FROM calls WHERE action = ? AND id <= "
            "(SELECT id FROM calls WHERE action = ? ORDER BY id LIMIT 1 OFFSET ?)",
            (action, action, count - 1),
        )

    def rename_calls(self, old: str, new: str) -> None:
        self._db.execute("UPDATE calls SET action = ? WHERE action = ?", (new, old))
        self._calls_kept.pop(old, None)
        self._calls_kept.pop(new, None)


def newest_calls(rows: list[CallRow], keep: int) -> list[CallRow]:
    """`rows` (oldest first) without those the trim would delete in the same transaction: each
    action's last `keep` only. At thousands of calls a second, a batch holds more calls of an
    action than are kept; writing only these bounds the store's work per batch, whatever the
    rate (the rest would be inserted, indexed and deleted again)."""
    if len(rows) <= keep:
        return rows
    counted: dict[str, int] = {}
    newest = []
    for row in reversed(rows):
        seen = counted.get(row.action, 0)
        if seen < keep:
            counted[row.action] = seen + 1
            newest.append(row)
    newest.reverse()
    return newest


@functools.cache
def _insert_calls(count: int) -> str:
    """The INSERT of `count` recent-call rows."""
    row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    return (
        "INSERT INTO calls (action, at, kind, status, ok, http_status, attempts, elapsed, error, call_id) "
        f"VALUES {', '.join([row] * count)}"
    )
