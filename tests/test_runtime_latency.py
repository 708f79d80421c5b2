"""The latency that decides the slow-host cap counts attempts that got no answer: one cut by the
call's deadline and one that failed at the network level record how long they were in flight,
with or without a `maxHttpConnections` gate on the way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from actionrt.guard import DestinationPolicy
from actionrt.http import HttpRequest, HttpResponse, NetworkError
from actionrt.limits import Limits
from actionrt.retry import Backoff
from actionrt.runtime import Runtime

URL = "https://api.example.com/v1/send"
HOST = "api.example.com"
TIMED_OUT = 10  # enough recorded attempts for the tracker to decide whether the host is slow


class SilentTransport:
    """A host that accepts the request and never answers: every send waits until cancelled."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.all_in_flight = asyncio.Event()

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.in_flight += 1
        if self.in_flight == TIMED_OUT:
            self.all_in_flight.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async def aclose(self) -> None:
        return None


class ResettingTransport:
    """A host whose connection breaks on every request."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent += 1
        raise NetworkError("connection reset by api.example.com")

    async def aclose(self) -> None:
        return None


def write(folder: Path, retries: int) -> None:
    document: dict[str, Any] = {
        "name": "smsSend",
        "endpoint": {"url": URL, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        "retry": {"count": retries},
        "timeout": 1,
    }
    (folder / "smsSend.json").write_text(json.dumps(document))


GATED = [
    {
        "url": URL,
        "methods": ["POST"],
        "services": {
            "action": {
                "rating": {"maxCallsCount": 100_000, "periodInMs": 1000},
                "maxHttpConnections": TIMED_OUT,
            }
        },
    }
]


@pytest.fixture(params=["ungated", "gated"])
def capping(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """No connection rule (the engine times the send) or one (the connection gate does)."""
    return GATED if request.param == "gated" else []


def runtime_for(folder: Path, transport: Any, capping: list[dict[str, Any]]) -> Runtime:
    return Runtime.from_path(
        folder,
        plugins=(),
        policy=DestinationPolicy(True),
        transport=transport,
        limits=Limits(capping, slow_host_latency=0.5),
        backoff=Backoff(base=0.001, cap=0.002),
    )


async def test_attempts_cut_by_the_deadline_make_a_silent_host_slow(
    tmp_path: Path, capping: list[dict[str, Any]]
) -> None:
    write(tmp_path, retries=0)
    transport = SilentTransport()
    runtime = runtime_for(tmp_path, transport, capping)
    async with runtime:
        results = await asyncio.gather(*(runtime.invoke("smsSend", {"n": i}) for i in range(TIMED_OUT)))
        tracker = runtime.limits.latency(HOST)
        gated = bool(runtime._connections._by_limiter)

    assert gated == (capping is GATED)  # the path under test is the one the fixture names
    assert transport.all_in_flight.is_set()
    assert [r.status for r in results] == ["timedout"] * TIMED_OUT
    assert tracker.median is not None and tracker.median >= 1.0  # each was in flight 1 s
    assert tracker.slow


async def test_attempts_that_fail_at_the_network_level_record_their_time(
    tmp_path: Path, capping: list[dict[str, Any]]
) -> None:
    write(tmp_path, retries=2)
    transport = ResettingTransport()
    runtime = runtime_for(tmp_path, transport, capping)
    async with runtime:
        result = await runtime.invoke("smsSend", {"n": 1})
        tracker = runtime.limits.latency(HOST)

    assert (result.error_code, result.attempts, transport.sent) == ("network", 3, 3)
    assert tracker.median is not None and len(tracker._samples) == 3
