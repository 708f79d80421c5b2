"""`maxHttpConnections` across processes: the Redis backend's connection gates against the real
server on 127.0.0.1:6379. Two backends on one prefix stand for two worker processes."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from test_limits_redis import REDIS_URL, prefix  # noqa: F401 - the fixture
from test_runtime_limits import HoldingServer, capping, server  # noqa: F401 - the fixture

from actionrt.limits import Limits, LimitsUnavailableError
from actionrt.limits.connections import LEASE_SECONDS, RedisConnectionGate
from actionrt.limits.redis_backend import RedisBackend
from actionrt.runtime import Runtime

KEY = "connections:rule-1"


class Asked:
    """Records each answer the gate's script gives (how many slots it granted)."""

    def __init__(self, backend: RedisBackend) -> None:
        self.granted: list[int] = []
        self.changed = asyncio.Event()
        run = backend.run

        async def recording(*args: Any) -> Any:
            answer = await run(*args)
            if isinstance(answer, int):  # the gate's script (the others answer lists)
                self.granted.append(answer)
                self.changed.set()
            return answer

        backend.run = recording  # type: ignore[method-assign]

    async def until(self, predicate: Callable[[list[int]], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate(self.granted):
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def backends(prefix: str) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:  # noqa: F811
    first, second = RedisBackend(REDIS_URL, prefix=prefix), RedisBackend(REDIS_URL, prefix=prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


async def held(prefix: str) -> int:  # noqa: F811
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return int(await client.zcard(prefix + KEY))
    finally:
        await client.aclose()


async def test_two_processes_share_a_rules_slots_and_a_freed_slot_reaches_the_other(
    backends: tuple[RedisBackend, RedisBackend],
    prefix: str,  # noqa: F811
) -> None:
    first, second = backends
    here, there = first.connection_gate(KEY, 2), second.connection_gate(KEY, 2)
    asked = Asked(second)
    await here.acquire()
    await here.acquire()
    waiting = asyncio.create_task(there.acquire())
    await asked.until(lambda granted: granted[-1:] == [0])  # asked, and refused: the rule is full
    assert not waiting.done() and await held(prefix) == 2
    here.release()
    await asyncio.wait_for(waiting, 10)  # noticed by polling: another process gave it back
    assert await held(prefix) == 2
    there.release()
    here.release()
    await asyncio.wait_for(_until_held(prefix, 0), 10)


async def _until_held(prefix: str, count: int) -> None:  # noqa: F811
    while await held(prefix) != count:
        await asyncio.sleep(0.01)


async def test_one_script_call_grants_slots_to_all_waiting_calls_of_a_process(
    backends: tuple[RedisBackend, RedisBackend],
) -> None:
    first, _ = backends
    gate = first.connection_gate(KEY, 5)
    asked = Asked(first)
    await asyncio.wait_for(asyncio.gather(*(gate.acquire() for _ in range(4))), 10)
    assert asked.granted == [4]


async def test_the_slots_of_a_process_that_died_are_freed_when_their_leases_expire(prefix: str) -> None:  # noqa: F811
    now = [1_000.0]
    dead, alive = (RedisBackend(REDIS_URL, prefix=prefix, clock=lambda: now[0]) for _ in range(2))
    try:
        await dead.connection_gate(KEY, 1).acquire()  # never given back
        gate = alive.connection_gate(KEY, 1)
        asked = Asked(alive)
        waiting = asyncio.create_task(gate.acquire())
        await asked.until(lambda granted: granted[-1:] == [0])
        now[0] += LEASE_SECONDS + 1
        await asyncio.wait_for(waiting, 10)
        assert asked.granted[-1] == 1
    finally:
        await dead.aclose()
        await alive.aclose()


async def test_a_call_that_gives_up_waiting_leaves_no_slot_taken(
    backends: tuple[RedisBackend, RedisBackend],
    prefix: str,  # noqa: F811
) -> None:
    first, _ = backends
    gate = first.connection_gate(KEY, 1)
    asked = Asked(first)
    await gate.acquire()
    impatient = asyncio.create_task(gate.acquire())
    await asked.until(lambda granted: granted[-1:] == [0])
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    gate.release()
    await asyncio.wait_for(_until_held(prefix, 0), 10)
    await asyncio.wait_for(gate.acquire(), 10)
    assert await held(prefix) == 1


async def test_a_redis_that_does_not_answer_fails_the_waiting_calls_as_unavailable(prefix: str) -> None:  # noqa: F811
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening
    backend = RedisBackend(f"redis://127.0.0.1:{closed.getsockname()[1]}/0", prefix=prefix)
    gate = RedisConnectionGate(backend, KEY, 3)
    try:
        with pytest.raises(LimitsUnavailableError, match="unavailable"):
            await asyncio.wait_for(gate.acquire(), 5)
        with pytest.raises(LimitsUnavailableError):  # during the outage: at once
            await gate.acquire()
    finally:
        await backend.aclose()
        closed.close()


def runtime_on(tmp_path: Path, url: str, backend: RedisBackend) -> Runtime:
    action = {
        "name": "push",
        "endpoint": {"url": url + "/push", "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        "timeout": 10,
    }
    (tmp_path / "push.json").write_text(json.dumps(action))
    limits = Limits(capping_rules=[capping(url + "/*", 3)], backend=backend)
    return Runtime.from_path(tmp_path, allow_private_network=True, limits=limits)


async def test_two_runtimes_on_one_redis_hold_a_rules_connections_at_the_endpoint(
    tmp_path: Path,
    server: HoldingServer,  # noqa: F811
    backends: tuple[RedisBackend, RedisBackend],
) -> None:
    # With a gate per process the peak would be 6: each runtime lets 3 through.
    server.expect(total=24, hold_at=3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = backends
    async with (
        runtime_on(tmp_path / "a", server.url, first) as one,
        runtime_on(tmp_path / "b", server.url, second) as other,
    ):
        results = await asyncio.gather(
            *(one.invoke("push", {"n": n}) for n in range(12)),
            *(other.invoke("push", {"n": n}) for n in range(12)),
        )
    assert [r.status for r in results] == ["http_200"] * 24
    assert server.peak == 3
