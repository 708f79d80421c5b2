"""`Limits` on the memory backend: default caps, rules deployed on a running object,
throttling queues, on an injected clock."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import sys
from typing import Any

import pytest

from actionrt import ValidationError
from actionrt.limits import ADMITTED, Limits, MemoryBackend


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """A sleep that records the waits and only yields: the test moves the clock itself."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def capping(url: str, count: int, period_ms: int, **service: Any) -> dict[str, Any]:
    return {
        "url": url,
        "methods": ["POST", "GET"],
        "services": {"action": {"rating": {"maxCallsCount": count, "periodInMs": period_ms}, **service}},
    }


def throttling(url: str, rate: int) -> dict[str, Any]:
    return {"urlPattern": url, "methods": ["POST"], "maxThroughput": rate}


def make(clock: Clock, **kwargs: Any) -> Limits:
    return Limits(backend=MemoryBackend(clock=clock), **kwargs)


async def admitted(limiter: Any, attempts: int) -> int:
    count = 0
    for _ in range(attempts):
        count += not (await limiter.admit()).capped
    return count


async def test_the_default_cap_is_per_host_and_shared_by_its_endpoints() -> None:
    clock = Clock()
    limits = make(clock, default_cap=(5, 60.0))
    a = limits.endpoint("POST", "https://api.example.com/a")
    b = limits.endpoint("GET", "https://api.example.com/b?x=1")
    other = limits.endpoint("POST", "https://other.example.com/a")
    assert await admitted(a, 3) == 3
    assert await admitted(b, 3) == 2
    refusal = await a.admit()
    assert refusal.capped
    assert refusal.reason == "capped: default cap of 5 calls per 60 s for host api.example.com"
    assert await admitted(other, 5) == 5
    clock.now += 60  # the whole window has slid past
    assert await admitted(a, 6) == 5


def test_without_throttling_the_memory_backend_answers_at_once_and_counts_alike() -> None:
    clock = Clock()
    limits = make(clock, capping_rules=[capping("https://api.partner.test/v1/*", 2, 1000)])
    limiter = limits.endpoint("POST", "https://api.partner.test/v1/send")
    answers = [limiter.admit_now() for _ in range(3)]  # no event loop: nothing is awaited
    assert answers[:2] == [ADMITTED, ADMITTED]
    assert answers[2] is not None and answers[2].capped  # the same windows as `admit()`
    assert asyncio.run(limiter.admit()).capped


def test_with_a_throttling_rule_the_answer_is_awaited() -> None:
    limits = make(Clock(), throttling_rules=[throttling("https://api.partner.test/*", 200)])
    assert limits.endpoint("POST", "https://api.partner.test/x").admit_now() is None


async def test_the_default_is_300000_calls_per_minute() -> None:
    limits = Limits()
    assert (limits.default_cap, limits.slow_host_cap, limits.slow_host_latency) == (
        (300_000, 60.0),
        (150_000, 30.0),
        0.75,
    )
    assert limits.max_queue_wait == 6 * 3600


async def test_a_slow_host_gets_the_slow_host_cap() -> None:
    clock = Clock()
    limits = make(clock, default_cap=(10, 60.0), slow_host_cap=(4, 30.0))
    endpoint = limits.endpoint("POST", "https://slow.example.com/x")
    assert await admitted(endpoint, 3) == 3
    for _ in range(10):
        endpoint.record_latency(0.9)
    assert await admitted(endpoint, 1) == 1  # 4 in the last 30 s: the slow cap is reached
    refusal = await endpoint.admit()
    assert refusal.capped
    assert "slow host slow.example.com" in refusal.reason
    clock.now += 30  # the 30 s window slid past those 4; the 60 s window still holds them
    assert await admitted(endpoint, 10) == 4
    for _ in range(10):
        limits.record_latency("slow.example.com", 0.1)  # median of the last 20 is now 0.5 s
    clock.now += 30  # 60 s window: the 4 calls of 30 s ago; fast again: only 10 / 60 s applies
    assert await admitted(endpoint, 20) == 6


async def test_a_capping_rule_refuses_at_once_and_every_attempt_takes_a_slot() -> None:
    clock = Clock()
    limits = make(clock, capping_rules=[capping("https://api.partner.test/v1/*", 3, 1000)])
    limiter = limits.endpoint("POST", "https://api.partner.test/v1/send")
    results = [await limiter.admit() for _ in range(5)]
    assert [r.capped for r in results] == [False, False, False, True, True]
    assert results[0] is ADMITTED
    assert results[3].reason == ("capped: rule 'https://api.partner.test/v1/*' allows 3 calls per 1000 ms")
    assert results[3].queued_seconds == 0
    clock.now += 0.999
    assert (await limiter.admit()).capped
    clock.now += 0.001  # exactly one period after the first three: a sliding window, not buckets
    assert await admitted(limiter, 5) == 3


async def test_a_rule_applies_only_to_its_methods_and_paths() -> None:
    clock = Clock()
    rule = {**capping("https://api.partner.test/v1/*", 2, 1000), "methods": ["POST"]}
    limits = make(clock, capping_rules=[rule])
    assert await admitted(limits.endpoint("POST", "https://api.partner.test/v1/a"), 3) == 2
    assert await admitted(limits.endpoint("GET", "https://api.partner.test/v1/a"), 3) == 3
    assert await admitted(limits.endpoint("POST", "https://api.partner.test/v2/a"), 3) == 3
    assert await admitted(limits.endpoint("POST", "http://api.partner.test/v1/a"), 3) == 3


async def test_endpoints_matching_one_rule_share_its_cap() -> None:
    clock = Clock()
    limits = make(clock, capping_rules=[capping("https://api.partner.test/users/*", 4, 1000)])
    # A dynamic path: the limiter is asked per call with the full URL; matching is cached.
    urls = [f"https://api.partner.test/users/{n}/messages" for n in range(6)]
    results = [await limits.endpoint("POST", url).admit() for url in urls]
    assert [r.capped for r in results] == [False] * 4 + [True] * 2
    assert limits.endpoint("POST", urls[0]) is limits.endpoint("POST", urls[0])


async def test_rules_are_created_deployed_and_undeployed_on_a_running_object() -> None:
    clock = Clock()
    limits = make(clock)
    limiter = limits.endpoint("POST", "https://api.partner.test/v1/send")
    uid = limits.create_capping(capping("https://api.partner.test/v1/*", 2, 1000))
    assert [(e.uid, e.kind, e.deployed) for e in limits.rules()] == [(uid, "capping", False)]
    assert await admitted(limiter, 3) == 3  # created, not deployed: no effect
    clock.now += 10
    limits.deploy(uid)
    assert limits.rules(deployed=True)[0].uid == uid
    assert limiter.rules[0].uid == uid
    assert await admitted(limiter, 3) == 2
    limits.undeploy(uid)
    assert await admitted(limiter, 3) == 3
    limits.deploy(uid)
    assert await admitted(limiter, 1) == 0  # the counter kept its calls while undeployed
    limits.delete(uid)
    assert limits.rules() == []
    with pytest.raises(KeyError, match="no rule"):
        limits.deploy(uid)


async def test_a_rule_deployed_later_applies_only_to_the_urls_it_matches() -> None:
    # Two endpoints of one host matched no rule when their limiters were made (at load): a
    # rule deployed afterwards for one of them must not cap the other.
    clock = Clock()
    limits = make(clock)
    send = limits.endpoint("POST", "https://api.partner.test/v1/send")
    other = limits.endpoint("POST", "https://api.partner.test/v2/other")
    limits.deploy(limits.create_capping(capping("https://api.partner.test/v1/*", 2, 1000)))
    assert await admitted(other, 3) == 3
    assert other.rules == [] and other.max_connections is None
    assert await admitted(send, 3) == 2
    assert [r.url for r in send.rules] == ["https://api.partner.test/v1/*"]


async def test_bad_rules_are_refused_with_the_reason() -> None:
    limits = Limits()
    with pytest.raises(ValidationError, match="maxThroughput"):
        limits.create_throttling(throttling("https://api.partner.test/*", 100))
    with pytest.raises(ValidationError, match="url: wildcards"):
        Limits(capping_rules=[capping("https://*.partner.test/", 5, 100)])


async def test_max_connections_comes_from_the_strictest_matching_rule() -> None:
    limits = Limits(
        capping_rules=[
            capping("https://api.partner.test/*", 1000, 1000, maxHttpConnections=50),
            capping("https://api.partner.test/v1/*", 1000, 60000, maxHttpConnections=20),
        ]
    )
    assert limits.endpoint("POST", "https://api.partner.test/v1/x").max_connections == 20
    assert limits.endpoint("POST", "https://api.partner.test/v2/x").max_connections == 50
    assert limits.endpoint("POST", "https://elsewhere.test/x").max_connections is None


async def test_throttled_calls_queue_in_arrival_order_without_failing() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    limits = make(clock, throttling_rules=[throttling("https://api.partner.test/*", 200)], sleep=sleeps)
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    finished: list[int] = []

    async def call(n: int) -> float:
        admission = await limiter.admit()
        assert not admission.capped
        finished.append(n)
        return admission.queued_seconds

    waits = await asyncio.gather(*(call(n) for n in range(450)))
    # Paced: one departure every 5 ms, the first at once: no burst of 200 at each second.
    assert waits == pytest.approx([n / 200 for n in range(450)], abs=1e-9)
    assert finished == list(range(450))  # first in, first out
    assert sorted(sleeps.waits) == pytest.approx(waits[1:], abs=1e-9)


def in_any_window(times: list[float], period: float) -> int:
    """The most times in any interval (t - period, t]."""
    ordered = sorted(times)
    return max(n - bisect.bisect_right(ordered, t - period) + 1 for n, t in enumerate(ordered))


@pytest.mark.parametrize("rate", [200, 333, 5000])
async def test_no_sliding_second_holds_more_than_the_rate_from_the_first_call_on(rate: int) -> None:
    # Calls arrive in bursts and trickles; each leaves at arrival + its wait (fake clock).
    clock = Clock()
    limits = make(
        clock, throttling_rules=[throttling("https://api.partner.test/*", rate)], sleep=Sleeps(clock)
    )
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    departures: list[float] = []
    for burst, gap in [(3 * rate, 0.0), (1, 2.5), (rate // 2 + 1, 0.3), (2 * rate, 4.0), (5, 0.0)]:
        clock.now += gap
        admissions = await asyncio.gather(*(limiter.admit() for _ in range(burst)))
        departures += [clock.now + a.queued_seconds for a in admissions]
    # Departures are rebuilt as arrival + wait: allow the last bit of float rounding.
    assert in_any_window(departures, 1.0 - 1e-9) <= rate
    assert in_any_window(departures[: rate + 1], 1.0 - 1e-9) <= rate  # the first second too
    # Evenly: never two departures closer than 1/rate (in arrival order, first in first out).
    gaps = [b - a for a, b in itertools.pairwise(departures)]
    assert min(gaps) >= 1 / rate - 1e-9


async def test_a_wait_longer_than_the_queue_limit_is_capped() -> None:
    clock = Clock()
    limits = make(
        clock,
        throttling_rules=[throttling("https://api.partner.test/*", 200)],
        max_queue_wait=1.5,
        sleep=Sleeps(clock),
    )
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    results = await asyncio.gather(*(limiter.admit() for _ in range(302)))
    assert [r.capped for r in results].count(True) == 1
    assert results[-1].capped  # the 302nd would leave 1.505 s after the first
    assert "queue wait (1.5 s) would exceed the limit (1.5 s)" in results[-1].reason


async def test_capping_and_throttling_on_one_endpoint() -> None:
    clock = Clock()
    limits = make(
        clock,
        capping_rules=[capping("https://api.partner.test/*", 250, 10_000)],
        throttling_rules=[throttling("https://api.partner.test/*", 200)],
        sleep=Sleeps(clock),
    )
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    first = await asyncio.gather(*(limiter.admit() for _ in range(200)))
    assert not any(r.capped for r in first)
    # The cap (250 / 10 s) is checked at arrival, before queueing, and again at departure.
    second = await asyncio.gather(*(limiter.admit() for _ in range(100)))
    assert [r.capped for r in second].count(False) == 50
    capped = [r for r in second if r.capped]
    assert all("allows 250 calls per 10000 ms" in r.reason for r in capped)


async def test_admit_does_the_same_work_however_many_calls_came_before() -> None:
    # Not a benchmark (see bench/limits_bench.py): a guard against an accidental O(n) path,
    # counted in Python function calls rather than timed.
    limits = Limits()
    limiter = limits.endpoint("POST", "https://api.example.com/x")

    async def calls_for_1000_admits() -> int:
        calls = 0

        def count(frame: object, event: str, arg: object) -> None:
            nonlocal calls
            calls += event == "call"

        sys.setprofile(count)
        try:
            for _ in range(1_000):
                await limiter.admit()
        finally:
            sys.setprofile(None)
        return calls

    early = await calls_for_1000_admits()
    for _ in range(20_000):
        await limiter.admit()
    late = await calls_for_1000_admits()
    assert late <= early * 1.1


async def test_a_cancelled_queued_call_leaves_the_queue_without_blocking_the_next() -> None:
    # The departure board's timer runs on the loop; the decisions read a clock the test moves.
    clock = Clock()
    limiter = make(clock, throttling_rules=[throttling("https://api.partner.test/*", 200)]).endpoint(
        "POST", "https://api.partner.test/send"
    )
    assert (await limiter.admit()).queued_seconds == 0.0  # the first leaves at once
    first = asyncio.create_task(limiter.admit())
    second = asyncio.create_task(limiter.admit())
    await asyncio.sleep(0)  # they reserved departures 5 ms and 10 ms from now
    first.cancel()
    clock.now += 0.01  # by the time the board's timer fires
    admission = await second
    assert not admission.capped and admission.queued_seconds == pytest.approx(0.01)
    assert first.cancelled()


async def test_calls_that_fell_due_during_a_stall_leave_one_interval_apart_in_order() -> None:
    # The departure board on a fake clock: the loop's timers run, the clock moves only when told.
    clock = Clock()
    clock.now = 0.0
    limits = make(clock, throttling_rules=[throttling("https://api.partner.test/*", 200)])
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    left: list[int] = []

    async def call(n: int) -> None:
        assert not (await limiter.admit()).capped
        left.append(n)

    tasks = [asyncio.create_task(call(n)) for n in range(5)]
    await tasks[0]  # the first leaves at once; the others are due 5, 10, 15, 20 ms later
    clock.now = 1.0  # the process stalled for a second: all four are due now
    await asyncio.wait_for(tasks[1], 5)
    # Not all four at once: each next one waits for the clock to move on by an interval.
    for n in (2, 3, 4):
        assert not tasks[n].done()
        clock.now += 0.005
        await asyncio.wait_for(tasks[n], 5)
    assert left == [0, 1, 2, 3, 4]
