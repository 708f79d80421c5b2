"""The retry policy: which statuses are retried, backoff bounds, Retry-After, and `decide`."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from actionrt.retry import (
    DEFAULT_RETRIED_STATUSES,
    FINAL,
    REFERENCE_RETRIED_STATUSES,
    RETRYABLE,
    STOP,
    Backoff,
    Outcome,
    RetryPolicy,
    RetryState,
    Stop,
    answer_outcome,
    decide,
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


STEADY = Backoff(base=0.2, factor=2.0, cap=5.0, jitter=0.0)  # no jitter: exact waits


def state(count: int = 3, retries: int = 0, time_left: float = 10.0) -> RetryState:
    return RetryState(RetryPolicy(count, backoff=STEADY), retries, time_left)


def test_decide_waits_the_backoff_of_the_next_retry() -> None:
    assert decide(RETRYABLE, state(retries=0)) == 0.2
    assert decide(RETRYABLE, state(retries=2)) == 0.8


def test_decide_stops_on_a_final_failure_and_when_the_retries_are_spent() -> None:
    assert decide(FINAL, state()) is STOP
    assert decide(RETRYABLE, state(count=3, retries=3)) is STOP
    assert decide(RETRYABLE, state(count=0)) is STOP
    assert STOP.reason == ""  # a plain stop adds nothing to the result's error


def test_decide_waits_what_retry_after_asks_instead_of_the_backoff() -> None:
    assert decide(Outcome(True, 3.0), state()) == 3.0
    assert decide(Outcome(True, 0.0), state(time_left=0.01)) == 0.0  # "now" needs no time


def test_decide_stops_when_the_wait_would_end_past_the_deadline() -> None:
    asked = decide(Outcome(True, 12.0), state(time_left=10.0))
    assert asked == Stop("Retry-After asks 12 s, past the deadline")
    late = decide(RETRYABLE, state(retries=1, time_left=0.3))  # the backoff asks 0.4 s
    assert late == Stop("no time left before the deadline for retry 2")


def test_decide_reads_its_state_and_changes_nothing() -> None:
    before = state(retries=1)
    decide(RETRYABLE, before)
    assert (before.retries, before.time_left) == (1, 10.0)


def test_answer_outcome_follows_the_policy_unless_the_connector_says() -> None:
    policy = RetryPolicy()
    assert answer_outcome(policy, 503, None, None, 0.0) is RETRYABLE
    assert answer_outcome(policy, 404, "5", None, 0.0) is FINAL  # Retry-After of a final answer is moot
    assert answer_outcome(policy, 200, None, True, 0.0) is RETRYABLE  # a failure in a 2xx answer
    assert answer_outcome(policy, 503, None, False, 0.0) is FINAL
    assert answer_outcome(policy, 429, "7", None, 0.0) == Outcome(True, 7.0)
