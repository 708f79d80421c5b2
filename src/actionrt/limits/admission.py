"""What a backend is asked (`GateSpec`: the windows one endpoint must respect) and what it
answers per attempt (`Admission`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Protocol

from actionrt.errors import ActionrtError
from actionrt.limits.window import LatencyTracker

__all__ = [
    "ADMITTED",
    "LIMITS_UNAVAILABLE",
    "Admission",
    "CapSpec",
    "Gate",
    "GateSpec",
    "LimitsUnavailableError",
    "ThrottleSpec",
]

LIMITS_UNAVAILABLE: Final = "limitsUnavailable"
"""The error code of a call the shared limits backend could not admit (Redis down or hung)."""


class LimitsUnavailableError(ActionrtError):
    """The shared limits backend did not answer within its timeout: the call is not sent (it
    would not be counted), and ends `internalError` with error code `limitsUnavailable`."""


Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Admission:
    """One attempt's answer: `capped` (do not send; the call fails as `capped`, no retry),
    the seconds it waited in a throttling queue, and a one-line reason when capped."""

    capped: bool
    queued_seconds: float = 0.0
    reason: str = ""


ADMITTED: Final = Admission(False)
"""The answer of an attempt that may go at once; shared, so the fast path allocates nothing."""


@dataclass(frozen=True, slots=True)
class CapSpec:
    """At most `limit` calls in any `period` seconds, counted under `key`."""

    key: str
    limit: int
    period: float
    reason: str


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """At most `rate` calls per `period` under `key`, paced evenly: one departure every
    `period / rate` seconds; the others queue in arrival order."""

    key: str
    rate: int
    reason: str
    period: float = 1.0


@dataclass(frozen=True, slots=True)
class GateSpec:
    """Everything one endpoint's attempts must respect, decided when its rules were matched.

    `host` is the default per-host cap; `slow_host` applies to the same calls (same key) while
    `latency.slow` says the host's recent median latency is over the threshold.
    """

    host: CapSpec
    slow_host: CapSpec
    latency: LatencyTracker
    caps: tuple[CapSpec, ...]
    throttles: tuple[ThrottleSpec, ...]
    max_queue_wait: float
    sleep: Sleep | None  # None: real time (the event loop's own timers)


class Gate(Protocol):
    """A backend's admission path for one endpoint: `admit_now()` answers at once when it can
    (None: the answer needs a wait, `await admit()`); `admit()` always answers."""

    def admit_now(self) -> Admission | None: ...

    def admit(self) -> Coroutine[Any, Any, Admission]: ...


def queue_too_long(wait: float, limit: float) -> Admission:
    return Admission(
        True,
        0.0,
        f"capped: the throttling queue wait ({wait:.1f} s) would exceed the limit ({limit:g} s)",
    )
