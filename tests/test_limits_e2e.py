"""End to end on the memory backend: a loopback server records when each call arrives, and
every sliding window is checked there (the engine integration drives the same limiter)."""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from actionrt.limits import Limits, MemoryBackend


@dataclass
class Recorder:
    port: int = 0
    # (arrival, decision) pairs, both on time.monotonic
    calls: list[tuple[float, float]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    recorder = Recorder()

    async def handle(request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.json()
        recorder.calls.append((arrived, body["decided"]))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield recorder
    await runner.cleanup()


class DecisionClock:
    """time.monotonic, remembering its readings: the limiter's view of each decision."""

    def __init__(self) -> None:
        self.readings: list[float] = []

    def __call__(self) -> float:
        now = time.monotonic()
        self.readings.append(now)
        return now

    @property
    def last(self) -> float:
        return self.readings[-1]


def in_window(times: list[float], end: float, period: float) -> int:
    return bisect_right(times, end) - bisect_right(times, end - period)


def max_in_any_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(in_window(times, end, period) for end in times)


def server_window(calls: list[tuple[float, float]], period: float) -> float:
    """The window length at the server that maps into one `period` of decisions: arrivals lag
    decisions by a delay that varies by `spread` over the run."""
    delays = [arrived - decided for arrived, decided in calls]
    spread = max(delays) - min(delays)
    assert spread < period * 0.9, f"arrival delays varied by {spread:.3f} s"
    return period - spread


async def test_capping_holds_in_every_window_at_the_server(server: Recorder) -> None:
    cap, period = 20, 0.3
    clock = DecisionClock()
    rule = {
        "url": f"http://127.0.0.1:{server.port}/*",
        "methods": ["POST"],
        "services": {"action": {"rating": {"maxCallsCount": cap, "periodInMs": 300}}},
    }
    limits = Limits(capping_rules=[rule], backend=MemoryBackend(clock=clock))
    url = f"http://127.0.0.1:{server.port}/send"
    limiter = limits.endpoint("POST", url)
    refused = 0
    deadline = time.monotonic() + 1.0

    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal refused
            while time.monotonic() < deadline:
                admission = await limiter.admit()
                if admission.capped:
                    refused += 1
                    await asyncio.sleep(0.002)  # pacing the load generator
                    continue
                decided = clock.last  # the memory path does not yield inside admit()
                async with session.post(url, json={"decided": decided}) as response:
                    assert response.status == 200

        await asyncio.gather(*(worker() for _ in range(8)))

    decisions = [decided for _, decided in server.calls]
    assert refused > 0
    assert max_in_any_window(decisions, period) == cap  # exact, at the limiter
    arrivals = [arrived for arrived, _ in server.calls]
    assert max_in_any_window(arrivals, server_window(server.calls, period)) <= cap
    assert len(server.calls) >= cap * 3  # the cap was used, window after window


async def test_throttled_calls_reach_the_server_in_arrival_order_at_the_rate(
    server: Recorder,
) -> None:
    rate = 200
    clock = DecisionClock()
    rule = {"urlPattern": f"http://127.0.0.1:{server.port}/*", "methods": ["POST"], "maxThroughput": rate}
    limits = Limits(throttling_rules=[rule], backend=MemoryBackend(clock=clock))
    url = f"http://127.0.0.1:{server.port}/send"
    limiter = limits.endpoint("POST", url)
    admitted_order: list[int] = []
    waits: list[float] = []
    departures: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=50)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(n: int) -> None:
            # admit() reads the clock before it first yields: that reading is this arrival.
            reading = len(clock.readings)
            admission = await limiter.admit()
            assert not admission.capped
            # The departure the queue gave this call; the event loop may wake it a bit later.
            decided = clock.readings[reading] + admission.queued_seconds
            admitted_order.append(n)
            waits.append(admission.queued_seconds)
            departures[n] = decided
            async with session.post(url, json={"decided": decided}) as response:
                assert response.status == 200

        await asyncio.gather(*(call(n) for n in range(450)))

    assert admitted_order == list(range(450))  # first in, first out
    assert waits[0] == 0.0 and sum(w > 0 for w in waits) > 400  # most of them queued
    # Paced: call n leaves at least 1/rate after call n - 1, from the first call on (no burst).
    assert all(departures[n] - departures[n - 1] >= 1 / rate - 1e-9 for n in range(1, 450))
    decisions = [decided for _, decided in server.calls]
    # Departures are rebuilt as arrival + wait: allow the last bit of float rounding.
    assert max_in_any_window(decisions, 1.0 - 1e-9) <= rate
    # At the endpoint, a whole second anywhere, the first included, sends' jitter and all.
    arrivals = [arrived for arrived, _ in server.calls]
    assert max_in_any_window(arrivals, 1.0) <= rate * 1.05
    assert len(server.calls) == 450  # queued, not failed
