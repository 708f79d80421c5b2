"""The retry policy: which failures are retried, how long to wait between attempts (exponential
backoff with jitter, or the server's `Retry-After`), all within the call's one deadline.

The engine runs the attempts as a plain loop and asks `decide` only when an attempt failed, so
the success path builds nothing. (tenacity would build an `AsyncRetrying` per call, ~23 µs here,
to compute a one-line wait.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final, Literal, NamedTuple

__all__ = [
    "DEFAULT_RETRIED_STATUSES",
    "FINAL",
    "REFERENCE_RETRIED_STATUSES",
    "RETRYABLE",
    "STOP",
    "Backoff",
    "Outcome",
    "RetryPolicy",
    "RetryState",
    "Stop",
    "answer_outcome",
    "decide",
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


class Outcome(NamedTuple):
    """A failed attempt as the retry policy sees it."""

    retryable: bool
    """Another try may end differently (a network failure, a retried status, a connector's say)."""
    retry_after: float | None = None
    """The seconds the answer's `Retry-After` asked to wait, if it asked."""


RETRYABLE: Final = Outcome(True)
"""A retryable failure without a `Retry-After` (a network failure, say)."""
FINAL: Final = Outcome(False)
"""A failure another try would not change."""


@dataclass(frozen=True, slots=True)
class Stop:
    """No more attempts; `reason` says why a retryable failure was not retried (else empty)."""

    reason: str = ""


STOP: Final = Stop()


@dataclass(slots=True)
class RetryState:
    """Where one call's retries stand: the policy, the retries made, the time left (seconds)
    before its deadline. The engine keeps it; `decide` only reads it."""

    policy: RetryPolicy
    retries: int = 0
    time_left: float = float("inf")


def decide(outcome: Outcome, state: RetryState) -> float | Stop:
    """After a failed attempt: the seconds to wait before retrying, or `Stop`.

    Stops when the failure is final, the retries are spent, or the wait (the server's
    `Retry-After`, else the backoff) would end past the deadline. Reads its arguments and
    changes nothing; the only state it touches is the backoff's jitter.
    """
    if not outcome.retryable or state.retries >= state.policy.count:
        return STOP
    asked = outcome.retry_after
    if asked is not None and asked >= state.time_left:
        return Stop(f"Retry-After asks {asked:g} s, past the deadline")
    retry = state.retries + 1
    wait = asked if asked is not None else state.policy.backoff.delay(retry)
    if wait > 0 and wait >= state.time_left:
        return Stop(f"no time left before the deadline for retry {retry}")
    return wait


def answer_outcome(
    policy: RetryPolicy, status: int, retry_after: str | None, verdict: bool | None, now: float
) -> Outcome:
    """A failed answer's `Outcome`: retryable when the connector says so (`verdict`), else when
    `status` is one the policy retries; with the wait its `Retry-After` asks (`now`: Unix time)."""
    retryable = status in policy.statuses if verdict is None else verdict
    if not retryable:
        return FINAL
    asked = retry_after_seconds(retry_after, now)
    return RETRYABLE if asked is None else Outcome(True, asked)
