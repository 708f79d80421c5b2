"""The retry policy: which failures are retried, how long to wait between attempts (exponential
backoff with jitter, or the server's `Retry-After`), all within the call's one deadline.

The engine runs the attempts as a plain loop and asks this module only when an attempt failed,
so the success path builds nothing. (tenacity would build an `AsyncRetrying` per call, ~23 µs
here, to compute a one-line wait; the deadline rules live in the engine anyway.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final, Literal

__all__ = [
    "DEFAULT_RETRIED_STATUSES",
    "REFERENCE_RETRIED_STATUSES",
    "Backoff",
    "RetryPolicy",
    "retry_after_seconds",
]

DEFAULT_RETRIED_STATUSES: Final = frozenset(
    {408, 425, 429, *(status for status in range(500, 600) if status != 501)}
)
"""`policy: default`: timeouts, too-early, too-many-requests and server errors but 501."""

REFERENCE_RETRIED_STATUSES: Final = frozenset(
    status for status in range(400, 600) if status not in (401, 403, 404)
)
"""`policy: reference`: the reference behaviour's rule, every HTTP error but 401, 403, 404."""

RetryRule = Literal["default", "reference"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits before retries: `base * factor**(n-1)` seconds before retry n, at most `cap`;
    the last `jitter` fraction of each wait is random, so calls that failed together do not
    all come back together. Tests scale it down (`Backoff(base=0.001)`) instead of sleeping."""

    base: float = 0.2
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.5

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        wait = min(self.cap, self.base * self.factor ** (retry - 1))
        return wait * (1.0 - self.jitter) + wait * self.jitter * random.random()

    def bounds(self, retry: int) -> tuple[float, float]:
        """The shortest and longest wait before retry `retry` (what tests check spacing with)."""
        wait = min(self.cap, self.base * self.factor ** (retry - 1))
        return wait * (1.0 - self.jitter), wait


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries follow a failed first attempt (0–10) and which statuses earn one.

    Network errors (connection refused, reset, closed early) are retried under both rules.
    """

    count: int = 3
    rule: RetryRule = "default"
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not 0 <= self.count <= 10:
            raise ValueError("retry count must be between 0 and 10")
        if self.rule not in ("default", "reference"):
            raise ValueError(f"unknown retry policy {self.rule!r}")

    @property
    def statuses(self) -> frozenset[int]:
        """The HTTP statuses that are retried."""
        return DEFAULT_RETRIED_STATUSES if self.rule == "default" else REFERENCE_RETRIED_STATUSES


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a `Retry-After` header asks for, in seconds: delta-seconds or an HTTP date
    (compared with `now`, a Unix time). None when absent or unreadable; never negative."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": GMT too (RFC 9110 dates are always GMT)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
