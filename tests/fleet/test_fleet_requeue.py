"""A call that sent nothing goes back to the queue (issue 17), with a real worker subprocess, the
real Redis and a slow loopback endpoint whose connection limit (a capping rule's
`maxHttpConnections`) makes calls wait for a connection until their deadline."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fleet_support import REDIS_URL, Endpoint, write_action

from actionrt.fleet import Queue
from actionrt.fleet.redis_streams import GROUP, QueueKeys
from actionrt.fleet.worker import resendable
from actionrt.results import NOT_SENT, InvocationResult


def two_connections(tmp_path: Path, endpoint: Endpoint) -> tuple[Path, Path]:
    """The `ping` action and a capping rule allowing it 2 connections at once."""
    actions = tmp_path / "actions"
    actions.mkdir()
    write_action(actions, endpoint.url + "/v1/slow")
    capping = tmp_path / "capping.json"
    rule = {
        "url": endpoint.url + "/v1/slow",
        "methods": ["POST"],
        "services": {
            "action": {"maxHttpConnections": 2, "rating": {"maxCallsCount": 10_000, "periodInMs": 1000}}
        },
    }
    capping.write_text(json.dumps([rule]))
    return actions, capping


async def test_calls_that_waited_for_a_connection_are_requeued_and_later_sent_once(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    actions, capping = two_connections(tmp_path, endpoint)
    endpoint.open.clear()  # the endpoint holds its answers: both connections stay busy
    worker = await start_worker(actions, "--capping", capping, "--max-deliveries", "1")
    keys = QueueKeys(queue_name)
    async with Queue(REDIS_URL, name=queue_name, actions=actions, allow_private_network=True) as queue:
        blockers = [await queue.submit("ping", params={"n": n}, timeout=30) for n in range(2)]
        await endpoint.until(lambda: endpoint.running == 2)
        waiting = await asyncio.gather(
            *(queue.submit("ping", params={"n": n}, timeout=1) for n in range(2, 6))
        )
        # each waits 1 s for a connection, sends nothing, and goes back to the queue: twice
        await worker.wait_for("requeued", times=8)
        pending: Any = await redis_client.xpending_range(keys.stream, GROUP, "-", "+", 100)
        assert pending and {p["times_delivered"] for p in pending} == {1}  # no delivery counted
        assert [await queue.result(i) for i in waiting] == [None] * 4  # not final: requeued
        assert len(endpoint.seen) == 2
        endpoint.open.set()
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in blockers + waiting))
    assert [(r.status, r.attempts) if r else None for r in results] == [("http_200", 1)] * 6
    assert Counter(endpoint.keys()) == Counter(blockers + waiting)  # each sent exactly once
    for line in (line for line in worker.lines if "requeued" in line):
        assert "nothing sent within 1 s: no maxHttpConnections slot free" in line
    assert await redis_client.xlen(keys.dead) == 0
    assert await redis_client.xlen(keys.stream) == 0


async def test_a_call_older_than_the_bound_ends_unsent_and_is_never_sent(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    actions, capping = two_connections(tmp_path, endpoint)
    endpoint.open.clear()
    worker = await start_worker(actions, "--capping", capping, "--max-unsent-age", "0.5")
    async with Queue(REDIS_URL, name=queue_name, actions=actions, allow_private_network=True) as queue:
        blockers = [await queue.submit("ping", params={"n": n}, timeout=30) for n in range(2)]
        await endpoint.until(lambda: endpoint.running == 2)
        waiting = await asyncio.gather(
            *(queue.submit("ping", params={"n": n}, timeout=1) for n in range(2, 5))
        )
        unsent = await asyncio.gather(*(queue.result(i, wait=30) for i in waiting))
        endpoint.open.set()
        sent = await asyncio.gather(*(queue.result(i, wait=30) for i in blockers))
    for result in unsent:
        assert result is not None
        assert (result.status, result.error_code, result.attempts, result.sent) == (
            "timedout",
            NOT_SENT,
            0,
            False,
        )
        assert result.error == "nothing sent within 1 s: no maxHttpConnections slot free"
    assert [r.status if r else None for r in sent] == ["http_200"] * 2
    assert sorted(endpoint.keys()) == sorted(blockers)  # the unsent calls never reached it
    assert worker.count("requeued") == 0
    assert await redis_client.xlen(QueueKeys(queue_name).stream) == 0


def result_of(code: str, attempts: int, error: str) -> InvocationResult:
    return InvocationResult(
        "ping", "x", False, None, None, None, attempts, error, "error", code, None, None, 0, 0, "", ""
    )


def test_only_a_call_that_waited_and_sent_nothing_is_resendable() -> None:
    assert resendable(result_of(NOT_SENT, 0, "nothing sent within 2 s: no connection free"))
    assert not resendable(result_of("timedout", 1, "no answer within 2 s (attempt 1 cancelled)"))
    # an unexpected failure reports no attempts but cannot tell whether a request went out
    assert not resendable(result_of("unexpected", 0, "unexpected ConnectionError"))
    assert not resendable(result_of("capped", 0, "the queue is too long"))
