"""Step events: one structured record per invocation, sent to the runtime's sinks.

Built in: `JsonLinesSink` (one JSON object per line in a file) and `LoggingSink` (one record on
the `actionrt.events` logger). Plugins add others through the `register_event_sinks` hook.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["EventSink", "JsonLinesSink", "LoggingSink"]


class EventSink(Protocol):
    """Receives one step event (a flat JSON-able mapping, never a secret) per invocation."""

    def emit(self, event: Mapping[str, Any]) -> None: ...


class JsonLinesSink:
    """Appends each event as one JSON line to a file (created with its directory if needed).

    Lines are written whole under a lock, so runtimes on several threads may share one sink;
    `flush_every` trades durability for speed (1 flushes every line).
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_every: int = 1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._flush_every = max(1, flush_every)
        self._pending = 0
        self._lock = threading.Lock()
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode

    def emit(self, event: Mapping[str, Any]) -> None:
        line = self._encode(dict(event)) + "\n"
        with self._lock:
            if self._file is None:
                raise ValueError(f"event sink {self.path} is closed")
            self._file.write(line)
            self._pending += 1
            if self._pending >= self._flush_every:
                self._file.flush()
                self._pending = 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class LoggingSink:
    """Logs each event as one record: the message is the event as JSON; the event itself is in
    the record's `event` attribute for structured handlers."""

    def __init__(self, logger: str | logging.Logger = "actionrt.events", level: int = logging.INFO):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def emit(self, event: Mapping[str, Any]) -> None:
        if self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level,
                "%s",
                json.dumps(event, separators=(",", ":"), default=str),
                extra={"event": dict(event)},
            )
