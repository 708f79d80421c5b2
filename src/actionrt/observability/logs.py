"""Call logs: one INFO line per call outcome on the `actionrt.calls` logger (action, status,
attempts, duration, call id, trace id; never a secret or a payload value), and the formatters
`--log-format text` and `json` install."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = ["CALL_LOG", "JsonLogFormatter", "TextLogFormatter", "configure_logging", "uvicorn_log_config"]

CALL_LOG: Final = logging.getLogger("actionrt.calls")
LOG_FORMATS: Final = ("text", "json")

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

    The record is made and handled as `Logger.info` would, less the search of the stack for
    the caller (this function, always) and the checks of `extra`: 63,000 instructions a line
    through `info`, 36,400 this way, before any handler (callgrind)."""
    if not CALL_LOG.isEnabledFor(logging.INFO):
        return
    # To the microsecond: `round(elapsed * 1000, 3)` but at exact ties, without its detour
    # through decimal text (2,000 instructions).
    milliseconds = int(elapsed * 1_000_000 + 0.5) / 1000
    record = CALL_LOG.makeRecord(
        CALL_LOG.name,
        logging.INFO,
        _CODE.co_filename,
        _CODE.co_firstlineno,
        "%s %s attempts=%d %.1f ms call=%s",
        (action, status, attempts, milliseconds, call_id),
        None,
        _CODE.co_name,
    )
    # The fields, as `extra` would set them (less its check that none clashes: none does).
    record.__dict__.update(
        action=action,
        status=status,
        attempts=attempts,
        durationMs=milliseconds,
        callId=call_id,
        traceId=trace_id,
        errorCode=error_code,
    )
    CALL_LOG.handle(record)


_CODE: Final = log_call.__code__  # where every call line comes from


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's
    `extra` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        seen, stamp = self._second
        if second != seen:
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, stamp)
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp


def uvicorn_log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and actionrt: both on stderr, in `log_format`
    (`text` or `json`), actionrt's call lines at `level`."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonLogFormatter"}
        if log_format == "json"
        else {
            "class": f"{__name__}.TextLogFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    )
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
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


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """Install `uvicorn_log_config` for a process that is not uvicorn (the fleet's worker)."""
    import logging.config

    logging.config.dictConfig(uvicorn_log_config(log_format, level))
