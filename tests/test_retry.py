"""The retry policy: which statuses are retried, backoff bounds, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from actionrt.retry import (
    DEFAULT_RETRIED_STATUSES,
    REFERENCE_RETRIED_STATUSES,
    Backoff,
    RetryPolicy,
    retry_after_seconds,
)


def test_the_default_rule_retries_transient_statuses_only() -> None:
    assert {408, 425, 429, 500, 502, 503, 504, 599} <= DEFAULT_RETRIED_STATUSES
    assert not {400, 401, 403, 404, 409, 422, 501} & DEFAULT_RETRIED_STATUSES
    assert RetryPolicy().statuses is DEFAULT_RETRIED_STATUSES


def test_the_reference_rule_retries_every_error_but_401_403_404() -> None:
    assert {400, 409, 422, 500, 501} <= REFERENCE_RETRIED_STATUSES
    assert not {401, 403, 404, 200, 302} & REFERENCE_RETRIED_STATUSES
    assert RetryPolicy(rule="reference").statuses is REFERENCE_RETRIED_STATUSES


@pytest.mark.parametrize("count", [-1, 11])
def test_the_count_is_bounded(count: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 10"):
        RetryPolicy(count=count)


def test_backoff_grows_exponentially_with_jitter_inside_bounds() -> None:
    backoff = Backoff(base=0.1, factor=2, cap=0.5, jitter=0.5)
    assert [backoff.bounds(n) for n in (1, 2, 3, 4)] == [(0.05, 0.1), (0.1, 0.2), (0.2, 0.4), (0.25, 0.5)]
    for retry in (1, 2, 3, 4, 5):
        low, high = backoff.bounds(retry)
        waits = {backoff.delay(retry) for _ in range(50)}
        assert all(low <= w <= high for w in waits)
        assert len(waits) > 1  # jittered


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7", now) == 7.0
    later = format_datetime(datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(later, now) == 30.0
    earlier = format_datetime(datetime(2026, 11, 27, 9, 0, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(earlier, now) == 0.0
    assert retry_after_seconds("Fri, 27 Nov 2026 10:00:10 -0000", now) == 10.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
def test_unreadable_retry_after_is_ignored(value: str | None) -> None:
    assert retry_after_seconds(value, 0.0) is None
