"""The guarantees of contract §5 with real worker subprocesses, the real Redis and a real HTTP
endpoint on loopback. Slow by nature (each worker imports actionrt): the fleet's slow cases
live here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fleet_support import REDIS_URL, Endpoint, write_action

from actionrt.fleet import Queue
from actionrt.fleet.redis_streams import QueueKeys


async def test_calls_go_through_the_queue_and_each_gets_one_result(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    await start_worker(tmp_path)
    async with Queue(REDIS_URL, name=queue_name, actions=tmp_path, allow_private_network=True) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(50)))
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    assert [r.status if r else None for r in results] == ["http_200"] * 50
    assert sorted(s.body["n"] for s in endpoint.seen) == list(range(50))
    # the action's idempotency header is the call id: a redelivery would repeat it
    assert sorted(endpoint.keys()) == sorted(ids)
    assert await redis_client.xlen(QueueKeys(queue_name).stream) == 0  # acknowledged and removed
