"""Step events: one structured record per invocation, sent to the runtime's sinks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EventSink(Protocol):
    """Receives one step event (a flat JSON-able mapping, never a secret) per invocation."""

    def emit(self, event: Mapping[str, Any]) -> None: ...
