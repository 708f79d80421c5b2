"""Observability: Prometheus metrics, OpenTelemetry spans, call log lines and call details
(contract §6; docs/observability.md)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from actionrt.observability.details import BODY_LIMIT, CallDetails, CallRecorder
from actionrt.observability.logs import JsonLogFormatter, configure_logging, uvicorn_log_config
from actionrt.observability.metrics import (
    CONTENT_TYPE,
    FleetMetrics,
    Metrics,
    metrics_for,
    render_metrics,
)
from actionrt.observability.watch import CallWatch, last_call_id

try:
    VERSION = version("actionrt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    VERSION = "0"

__all__ = [
    "BODY_LIMIT",
    "CONTENT_TYPE",
    "VERSION",
    "CallDetails",
    "CallRecorder",
    "CallWatch",
    "FleetMetrics",
    "JsonLogFormatter",
    "Metrics",
    "configure_logging",
    "last_call_id",
    "metrics_for",
    "render_metrics",
    "uvicorn_log_config",
]
