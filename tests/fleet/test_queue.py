"""`Queue` on the real Redis, without workers: what submit refuses, idempotency keys, waiting."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from fleet_support import REDIS_URL, write_action

from actionrt import Runtime, UnknownActionError
from actionrt.fleet import CallRefusedError, Queue, QueueUnavailableError
from actionrt.fleet.calls import QueuedCall, decode_result, failed_result
from actionrt.fleet.engine import Completion
from actionrt.fleet.redis_streams import QueueKeys, RedisStreams


@pytest.fixture
def actions(tmp_path: Path) -> Path:
    write_action(tmp_path, "https://api.example.com/v1/ping")
    return tmp_path


async def test_submit_refuses_bad_input_with_the_message_invoke_gives_and_queues_nothing(
    actions: Path, queue_name: str, redis_client: aioredis.Redis
) -> None:
    runtime = Runtime.from_path(actions)
    expected = (await runtime.invoke("ping", {"n": "many"})).error
    async with Queue(REDIS_URL, name=queue_name, actions=actions) as queue:
        with pytest.raises(CallRefusedError) as refused:
            await queue.submit("ping", params={"n": "many"})
        with pytest.raises(UnknownActionError, match="unknown action 'pong'"):
            await queue.submit("pong", params={"n": 1})
        with pytest.raises(CallRefusedError, match="timeout: must be between 1 and 30 seconds"):
            await queue.submit("ping", params={"n": 1}, timeout=90)
    assert str(refused.value) == expected
    assert await redis_client.exists(QueueKeys(queue_name).stream) == 0


async def test_submit_says_clearly_when_redis_is_unreachable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Queue(f"redis://user:hunter2@127.0.0.1:{port}/0", name="nowhere") as queue:
        with pytest.raises(QueueUnavailableError) as unreachable:
            await queue.submit("ping", params={"n": 1})
    assert f"Redis at redis://127.0.0.1:{port}/0 is unreachable" in str(unreachable.value)
    assert "hunter2" not in str(unreachable.value)


async def test_a_key_is_queued_once_however_many_submit_it_at_once(
    queue_name: str, redis_client: aioredis.Redis
) -> None:
    async with Queue(REDIS_URL, name=queue_name) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", idempotency_key="k-1") for _ in range(10)))
        other = await queue.submit("ping", idempotency_key="k-2")
    assert len(set(ids)) == 1 and other != ids[0]
    assert await redis_client.xlen(QueueKeys(queue_name).stream) == 2


async def test_waiting_callers_are_woken_by_the_stored_result(
    queue_name: str, redis_client: aioredis.Redis
) -> None:
    engine = RedisStreams(REDIS_URL, queue_name)
    async with Queue(REDIS_URL, name=queue_name) as queue:
        call_id = await queue.submit("ping", params={"n": 1})
        assert await queue.result(call_id) is None
        assert await queue.result(call_id, wait=0.05) is None  # not done within the wait
        waiters = [asyncio.create_task(queue.result(call_id, wait=30)) for _ in range(3)]
        await engine.prepare()
        (delivery,) = await engine.read("w", 10, 0.1)
        assert QueuedCall.decode(delivery.raw).call_id == call_id
        stored = failed_result("ping", "a stand-in result")
        await engine.complete([Completion(delivery.ref, call_id, stored)])
        assert await asyncio.gather(*waiters) == [stored] * 3
    await engine.aclose()
    assert decode_result(await redis_client.get(QueueKeys(queue_name).result(call_id)) or b"") == stored
    assert await redis_client.xlen(QueueKeys(queue_name).stream) == 0


async def test_submit_many_queues_a_batch_in_order_or_refuses_it_whole(
    actions: Path, queue_name: str, redis_client: aioredis.Redis
) -> None:
    stream = QueueKeys(queue_name).stream
    async with Queue(REDIS_URL, name=queue_name, actions=actions) as queue:
        with pytest.raises(CallRefusedError) as alone:
            await queue.submit("ping", params={"n": "many"})
        with pytest.raises(CallRefusedError) as refused:
            await queue.submit_many("ping", [{"n": 0}, {"n": 1}, {"n": "many"}, {"n": 3}])
        assert str(refused.value) == f"calls[2]: {alone.value}"
        assert await redis_client.exists(stream) == 0  # nothing queued
        with pytest.raises(CallRefusedError, match="idempotency_keys: 1 keys for 2 calls"):
            await queue.submit_many("ping", [{"n": 0}, {"n": 1}], idempotency_keys=["a"])
        ids = await queue.submit_many("ping", [{"n": n} for n in range(5)])
        keyed = await queue.submit_many("ping", [{"n": 5}, {"n": 6}], idempotency_keys=["k-5", "k-5"])
        again = await queue.submit("ping", params={"n": 7}, idempotency_key="k-5")
    assert len(set(ids)) == 5 and keyed[0] == keyed[1] == again
    entries = await redis_client.xrange(stream)
    queued = [QueuedCall.decode(fields[b"c"]) for _, fields in entries]
    assert [(c.call_id, c.params) for c in queued] == [
        *((i, {"n": n}) for n, i in enumerate(ids)),
        (keyed[0], {"n": 5}),
    ]


async def test_results_waits_for_a_batch_with_one_waiter_and_leaves_the_missing_none(
    queue_name: str, redis_client: aioredis.Redis
) -> None:
    engine = RedisStreams(REDIS_URL, queue_name)
    async with Queue(REDIS_URL, name=queue_name) as queue:
        ids = await queue.submit_many("ping", [{"n": n} for n in range(4)])
        await engine.prepare()
        deliveries = await engine.read("w", 10, 0.1)
        stored = {d.ref: failed_result("ping", f"result {n}") for n, d in enumerate(deliveries)}
        # one result stored before the batch waits (found by looking), two while it waits
        # (announced), the fourth never
        first, second, third, _ = deliveries
        await engine.complete([Completion(first.ref, ids[0], stored[first.ref])])
        waiting = asyncio.create_task(queue.results([*ids, ids[0]], wait=30))
        await engine.complete(
            [Completion(d.ref, i, stored[d.ref]) for d, i in zip((second, third), ids[1:3], strict=True)]
        )
        assert await queue.results(ids[3:], wait=0.05) == [None]
        assert not waiting.done()  # the fourth is still missing
        await engine.complete([Completion(deliveries[3].ref, ids[3], stored[deliveries[3].ref])])
        got = await waiting
    await engine.aclose()
    assert got == [*(stored[d.ref] for d in deliveries), stored[first.ref]]


async def test_submit_many_of_more_calls_than_one_script_takes_queues_them_all_in_order(
    queue_name: str, redis_client: aioredis.Redis
) -> None:
    async with Queue(REDIS_URL, name=queue_name) as queue:
        ids = await queue.submit_many("ping", [{"n": n} for n in range(2500)])
    entries = await redis_client.xrange(QueueKeys(queue_name).stream)
    assert [QueuedCall.decode(fields[b"c"]).call_id for _, fields in entries] == ids
    assert len(set(ids)) == 2500
