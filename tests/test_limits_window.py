"""The exact sliding window: property tests on an injected clock (no sleeping)."""

from __future__ import annotations

import random
import statistics
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionrt.limits import LatencyTracker, SlidingWindow

# Integer milliseconds as floats keep the arithmetic exact, so windows are checked at their edges.
arrivals = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=400).map(
    lambda gaps: [float(t) for t in _cumulative(gaps)]
)


def _cumulative(gaps: list[int]) -> list[int]:
    total, out = 0, []
    for gap in gaps:
        total += gap
        out.append(total)
    return out


def in_window(times: list[float], end: float, period: float) -> int:
    """How many of the sorted `times` fall in (end - period, end]."""
    return bisect_right(times, end) - bisect_right(times, end - period)


@settings(max_examples=300, deadline=None)
@given(arrivals, st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=200))
def test_no_window_ever_admits_more_than_its_limit(times: list[float], limit: int, period: int) -> None:
    window = SlidingWindow(limit, float(period))
    admitted: list[float] = []
    for now in times:
        if window.fits(now):
            window.record(now)
            admitted.append(now)
    # Every window's count peaks right after an admission: check the window ending at each one.
    assert all(in_window(admitted, end, period) <= limit for end in admitted)


@settings(max_examples=300, deadline=None)
@given(arrivals, st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=200))
def test_a_call_is_refused_only_when_its_window_is_full(times: list[float], limit: int, period: int) -> None:
    # Exactness: not clock buckets, not approximations. Refused means exactly `limit` in the
    # window ending now; admitted means fewer before it.
    window = SlidingWindow(limit, float(period))
    admitted: list[float] = []
    for now in times:
        before = in_window(admitted, now, period)
        fits = window.fits(now)
        assert fits == (before < limit)
        assert window.count(now) == before
        if fits:
            window.record(now)
            admitted.append(now)


@settings(max_examples=200, deadline=None)
@given(
    arrivals,
    st.integers(min_value=2, max_value=30),
    st.integers(min_value=2, max_value=200),
    st.data(),
)
def test_a_second_shorter_limit_on_the_same_window_is_exact(
    times: list[float], limit: int, period: int, data: st.DataObject
) -> None:
    # The slow-host cap (150,000 / 30 s) is read off the default cap's window (300,000 / 60 s).
    inner_limit = data.draw(st.integers(min_value=1, max_value=limit))
    inner_period = data.draw(st.integers(min_value=1, max_value=period))
    window = SlidingWindow(limit, float(period))
    admitted: list[float] = []
    for now in times:
        fits = window.fits(now) and window.fits_within(now, inner_limit, float(inner_period))
        expected = (
            in_window(admitted, now, period) < limit and in_window(admitted, now, inner_period) < inner_limit
        )
        assert fits == expected
        if fits:
            window.record(now)
            admitted.append(now)


@settings(max_examples=200, deadline=None)
@given(arrivals, st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=100))
def test_queued_departures_keep_the_rate_in_every_window_and_arrival_order(
    times: list[float], rate: int, period: int
) -> None:
    # Throttling: each arrival gets the earliest departure that keeps the window, in order.
    window = SlidingWindow(rate, float(period))
    departures: list[float] = []
    for now in times:
        departure = window.next_free(now)
        assert departure >= now
        assert window.fits(departure)
        window.record(departure)
        departures.append(departure)
    assert departures == sorted(departures)  # FIFO: nobody overtakes an earlier arrival
    assert all(in_window(departures, end, period) <= rate for end in departures)
    # And nobody waits longer than needed: one tick earlier would overfill a window.
    for index, departure in enumerate(departures):
        if departure > times[index]:
            assert in_window(departures[:index], departure - 1e-3, period) >= rate


def test_memory_follows_the_calls_in_the_window_not_the_limit() -> None:
    window = SlidingWindow(300_000, 60.0)
    for i in range(1000):
        now = i * 1.0  # one call a second: at most 60 in any window
        assert window.fits(now)
        window.record(now)
    assert window._capacity <= 128


def test_window_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(0, 1.0)
    with pytest.raises(ValueError):
        SlidingWindow(5, 0.0)


def test_latency_tracker_uses_the_median_of_the_last_hundred_calls() -> None:
    tracker = LatencyTracker(threshold=0.75)
    for _ in range(9):
        tracker.record(5.0)
    assert not tracker.slow  # too few calls to judge
    tracker.record(5.0)
    assert tracker.slow
    for _ in range(10):
        tracker.record(0.1)
    assert tracker.slow  # median of ten 5.0 and ten 0.1 is 2.55
    for _ in range(10):
        tracker.record(0.1)
    assert not tracker.slow  # now mostly fast
    for _ in range(100):
        tracker.record(0.8)
    assert tracker.slow and tracker.median == 0.8  # only the last hundred count


def test_latency_tracker_judges_as_the_median_of_the_kept_calls_would() -> None:
    # Latencies around the threshold, some on it, over runs long enough to fill and roll the
    # hundred: the running count of slow calls must judge as the median of the kept ones does,
    # the undecided case (exactly half over) included.
    rng = random.Random(16)
    tracker = LatencyTracker(threshold=0.75)
    kept: list[float] = []
    for index in range(3000):
        seconds = rng.choice([0.1, 0.75, 0.8, rng.uniform(0.5, 1.0)])
        tracker.record(seconds)
        kept = [*kept, seconds][-100:]
        if index >= 9 and (index + 1) % 10 == 0:
            assert tracker.slow == (statistics.median(kept) > 0.75), index


@pytest.mark.parametrize(("under", "slow"), [(0.75, True), (0.1, False)])
def test_latency_tracker_with_exactly_half_the_calls_slow_asks_the_median(under: float, slow: bool) -> None:
    tracker = LatencyTracker(threshold=0.75)
    for _ in range(50):
        tracker.record(under)
        tracker.record(0.8)
    assert tracker.slow is slow  # the median is (under + 0.8) / 2
