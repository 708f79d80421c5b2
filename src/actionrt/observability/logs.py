"""Call logs: one INFO line per call outcome on the `actionrt.calls` logger (action, status,
attempts, duration, call id, trace id; never a secret or a payload value), and the formatters
`--log-format text` and `json` install."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = [
    "CALL_LOG",
    "BatchedStreamHandler",
    "JsonLogFormatter",
    "TextLogFormatter",
    "configure_logging",
    "uvicorn_log_config",
]

CALL_LOG: Final = logging.getLogger("actionrt.calls")
CALL_MESSAGE: Final = "%s %s attempts=%d %.1f ms call=%s"  # of a call line's first five fields
CALL_FIELDS: Final = ("action", "status", "attempts", "durationMs", "callId", "traceId", "errorCode")
"""A call line's fields, by the names its record carries them (`extra`) and a JSON line writes."""
CallFields = tuple[str, str, int, float, str, str | None, str | None]
LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else was passed as `extra` and is a field.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def log_call(
    action: str,
    status: str,
    attempts: int,
    elapsed: float,
    call_id: str,
    trace_id: str | None,
    error_code: str | None,
) -> None:
    """The call's outcome line. The error *text* stays out: it may quote an input value.

    Where the line's only reader is a `BatchedStreamHandler` with one of our formatters (as
    `actionrt serve` and `worker` set logging up), the formatter writes the line straight from
    the fields and the handler adds it as `emit` would: no record, which is most of a line's
    cost (`_direct_handler`). Otherwise the record is made and handled as `Logger.info` would,
    less the search of the stack for the caller (this function, always) and the checks of
    `extra`: 63,000 instructions a line through `info`, 36,400 this way, before any handler
    (callgrind)."""
    if not CALL_LOG.isEnabledFor(logging.INFO):
        return
    # To the microsecond: `round(elapsed * 1000, 3)` but at exact ties, without its detour
    # through decimal text (2,000 instructions).
    milliseconds = int(elapsed * 1_000_000 + 0.5) / 1000
    fields: CallFields = (action, status, attempts, milliseconds, call_id, trace_id, error_code)
    handler = _direct_handler()
    if handler is not None:
        formatter = handler.formatter
        if type(formatter) is TextLogFormatter or type(formatter) is JsonLogFormatter:
            line = formatter.call_line(time.time(), fields)
            if line is not None:
                handler.add_call_line(line)
                return
    record = CALL_LOG.makeRecord(
        CALL_LOG.name,
        logging.INFO,
        _CODE.co_filename,
        _CODE.co_firstlineno,
        CALL_MESSAGE,
        fields[:5],
        None,
        _CODE.co_name,
    )
    # The fields, as `extra` would set them (less its check that none clashes: none does).
    record.__dict__.update(zip(CALL_FIELDS, fields, strict=True))
    CALL_LOG.handle(record)


def _direct_handler() -> BatchedStreamHandler | None:
    """The handler that may take a call line ready-made: the only handler the line reaches, a
    `BatchedStreamHandler` taking INFO, with no filter on the way and the standard record (so no
    one else could see a record). A call line through `serve`'s logging (text): 64,900
    instructions with its record, 21,700 ready-made, this walk 3,000 of them (callgrind, 20,000
    `log_call`s in a loop).
    """
    handler: logging.Handler | None = None
    logger: logging.Logger | None = CALL_LOG
    while logger is not None:
        if logger.filters:
            return None
        for found in logger.handlers:
            if handler is not None:
                return None
            handler = found
        if not logger.propagate:
            break
        logger = logger.parent
    if (
        type(handler) is not BatchedStreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or CALL_LOG.disabled
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    return handler


_CODE: Final = log_call.__code__  # where every call line comes from
_CALLS: Final = CALL_LOG.name


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's
    `extra` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode_line(line)

    def call_line(self, created: float, fields: CallFields) -> str:
        """The line `format` makes of `log_call`'s record, made from its fields."""
        line: dict[str, Any] = {
            "time": _iso_time(created),
            "level": "INFO",
            "logger": _CALLS,
            "message": CALL_MESSAGE % fields[:5],
        }
        line.update(zip(CALL_FIELDS, fields, strict=True))
        return _encode_line(line)


def _iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _encode_line(line: dict[str, Any]) -> str:
    """`line` as compact JSON, by orjson (a call line in 93,000 instructions with `json.dumps`,
    51,600 with orjson; callgrind). It writes text as UTF-8 where `json` escapes it, the same
    values; what it refuses (an integer past 64 bits) the standard library writes."""
    try:
        return orjson.dumps(line, default=str).decode()
    except TypeError:
        return json.dumps(line, default=str, separators=(",", ":"))


class TextLogFormatter(logging.Formatter):
    """`logging.Formatter`, with the default time format made once per second: `strftime`
    is 12,500 of the 28,700 instructions of a call line otherwise (callgrind)."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text
    _line_head: tuple[int, str] = (-1, "")  # the same second, as a call line starts

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        stamp = self._second_text(int(record.created))
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp

    def call_line(self, created: float, fields: CallFields) -> str | None:
        """The line `format` makes of `log_call`'s record, made from its fields; None unless
        the format is `serve`'s own (`TEXT_FORMAT`, the default time format)."""
        if self._fmt != TEXT_FORMAT or self.datefmt is not None or self.default_msec_format != "%s,%03d":
            return None
        action, status, attempts, milliseconds, call_id, _, _ = fields
        second = int(created)
        seen, head = self._line_head
        if second != seen:
            head = f"{self._second_text(second)},"
            self._line_head = (second, head)
        return (  # CALL_MESSAGE's words; the milliseconds of the time as `LogRecord` has them
            f"{head}{_MSECS[int((created - second) * 1000)]} INFO actionrt.calls: "
            f"{action} {status} attempts={attempts} {milliseconds:.1f} ms call={call_id}"
        )

    def _second_text(self, second: int) -> str:
        seen, stamp = self._second
        if second != seen:
            stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, stamp)
        return stamp


# "000" to "999": the line's milliseconds by lookup, 2,500 instructions fewer than `:03d`.
_MSECS: Final = tuple(f"{msecs:03d}" for msecs in range(1000))

# How long a call line may wait to be written with the next ones, and how many may wait.
LINE_DELAY: Final = 0.2
LINES_WAITING: Final = 1000


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A `StreamHandler` that writes call lines (`actionrt.calls`, INFO) in batches, one write
    and flush each: a call line waits at most `delay` seconds (by `clock`; a writer thread sees
    to it when no other line comes); any other line (a warning, an error, uvicorn's start and
    stop) is written at once after the lines that wait, and `flush` and `close`
    (`logging.shutdown` at exit) write what waits. A call line written at once costs 6,000
    instructions and a system call more (callgrind); the order of the lines is kept."""

    def __init__(
        self, stream: Any = None, delay: float = LINE_DELAY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(stream)
        self.delay = delay
        self.clock = clock
        self._lines: list[str] = []
        self._due = 0.0  # when the first waiting line must be written
        self._waiting = threading.Condition(self.lock)
        self._writer: threading.Thread | None = None
        self._closed = False

    def emit(self, record: logging.LogRecord) -> None:
        # Called holding `self.lock` (`Handler.handle`), as every method here that writes.
        try:
            self._add(self.format(record), record.name == _CALLS and record.levelno <= logging.INFO)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def add_call_line(self, line: str) -> None:
        """A call line its formatter made from `log_call`'s fields, added as `emit` adds one."""
        # `self.lock`, as `Handler.handle` holds it around `emit` (and `_waiting` is made of it):
        # the lock itself, not the condition's Python-level `__enter__` and `__exit__` (a line
        # added in 645 -> 528 ns, timeit).
        with self.lock:  # type: ignore[union-attr]
            try:
                self._add(line, True)
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"name": _CALLS, "msg": line}))

    def _add(self, line: str, waits: bool) -> None:
        """Add a formatted line; it `waits` (a call line) or is written at once with those waiting."""
        lines = self._lines
        lines.append(line + self.terminator)
        if not waits or len(lines) >= LINES_WAITING:
            self._write()
        elif len(lines) == 1:
            self._due = self.clock() + self.delay
            self._wake_writer()
        elif self.clock() >= self._due:
            self._write()

    def flush(self) -> None:
        with self._waiting:
            self._write()

    def close(self) -> None:
        with self._waiting:
            self._closed = True
            self._waiting.notify()
            try:
                self._write()
            finally:
                super().close()

    def _write(self) -> None:
        lines = self._lines
        if lines:
            self._lines = []
            self.stream.write("".join(lines))
        super().flush()

    def _wake_writer(self) -> None:
        writer = self._writer
        if writer is None or not writer.is_alive():  # none yet, or lost in a fork
            writer = self._writer = threading.Thread(
                target=self._run, name="actionrt-log-writer", daemon=True
            )
            writer.start()
        self._waiting.notify()

    def _run(self) -> None:
        with self._waiting:
            while not self._closed:
                if not self._lines:
                    self._waiting.wait()
                    continue
                left = self._due - self.clock()
                if left > 0:
                    self._waiting.wait(left)
                    continue
                try:
                    self._write()
                except Exception:  # a broken stream: its lines are lost, as `emit` would lose them
                    self.handleError(logging.makeLogRecord({"msg": "a batch of log lines"}))


def uvicorn_log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and actionrt: both on stderr, in `log_format`
    (`text` or `json`), actionrt's call lines at `level`; lines written in batches
    (`BatchedStreamHandler`)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonLogFormatter"}
        if log_format == "json"
        else {
            "class": f"{__name__}.TextLogFormatter",
            "format": TEXT_FORMAT,
        }
    )
    handler = {
        "class": f"{__name__}.BatchedStreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "actionrt": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


def configure_logging(log_format: str, level: str = "INFO", *, root: bool = False) -> None:
    """Install `uvicorn_log_config` for a process that is not uvicorn (the fleet's worker);
    `root`: every other library's lines too, at INFO, through the same handler (what
    `logging.basicConfig(level=logging.INFO)` would have written)."""
    import logging.config

    config = uvicorn_log_config(log_format, level)
    if root:
        config["root"] = {"handlers": ["default"], "level": "INFO"}
    logging.config.dictConfig(config)
