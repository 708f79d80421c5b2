"""Call logs: one INFO line per call outcome on the `actionrt.calls` logger (action, status,
attempts, duration, call id, trace id; never a secret or a payload value), and the JSON
formatter `--log-format json` installs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["CALL_LOG", "JsonLogFormatter", "configure_logging", "uvicorn_log_config"]

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
    """The call's outcome line. The error *text* stays out: it may quote an input value."""
    milliseconds = round(elapsed * 1000, 3)
    CALL_LOG.info(
        "%s %s attempts=%d %.1f ms call=%s",
        action,
        status,
        attempts,
        milliseconds,
        call_id,
        extra={
            "action": action,
            "status": status,
            "attempts": attempts,
            "durationMs": milliseconds,
            "callId": call_id,
            "traceId": trace_id,
            "errorCode": error_code,
        },
    )


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
        return json.dumps(line, default=str, separators=(",", ":"))


def uvicorn_log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and actionrt: both on stderr, in `log_format`
    (`text` or `json`), actionrt's call lines at `level`."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonLogFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
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
