"""The guarantees of contract §5 with real worker subprocesses, the real Redis and a real HTTP
endpoint on loopback. Slow by nature (each worker imports actionrt): the fleet's slow cases
live here."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fleet_support import REDIS_URL, Endpoint, RedisProxy, token, write_action

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


def fleet_queue(queue_name: str, actions: Path | None = None) -> Queue:
    return Queue(REDIS_URL, name=queue_name, actions=actions, allow_private_network=True)


async def test_a_second_submit_with_a_key_returns_the_first_result_without_a_call(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    await start_worker(tmp_path)
    async with fleet_queue(queue_name, tmp_path) as queue:
        first = await queue.submit("ping", params={"n": 1}, idempotency_key="journey-7:profile-42:node-3")
        result = await queue.result(first, wait=30)
        again = await queue.submit("ping", params={"n": 2}, idempotency_key="journey-7:profile-42:node-3")
        assert again == first
        assert await queue.result(again) == result
    assert result is not None and result.status == "http_200"
    assert [s.body["n"] for s in endpoint.seen] == [1]
    assert endpoint.keys() == [first]


async def test_sigkill_mid_run_repeats_only_the_calls_in_flight_with_the_same_key(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    endpoint.open.clear()  # the endpoint holds every answer: calls stay in flight
    doomed = await start_worker(tmp_path, "--concurrency", "5", "--claim-idle", "1")
    async with fleet_queue(queue_name, tmp_path) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(20)))
        await endpoint.until(lambda: endpoint.running == 5)
        in_flight = set(endpoint.keys())
        doomed.signal(signal.SIGKILL)
        assert await doomed.wait() == -signal.SIGKILL
        endpoint.open.set()
        await start_worker(tmp_path, "--claim-idle", "1")
        results = await asyncio.gather(*(queue.result(i, wait=60) for i in ids))
    assert all(r is not None and r.status == "http_200" for r in results)
    sent = Counter(endpoint.keys())
    assert set(sent) == set(ids)
    repeated = {key for key, times in sent.items() if times > 1}
    assert repeated == in_flight  # each repeat carries the key the first delivery carried
    assert max(sent.values()) == 2


async def test_sigterm_finishes_the_calls_in_flight_and_exits_0(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    endpoint.open.clear()
    worker = await start_worker(tmp_path, "--concurrency", "5")
    async with fleet_queue(queue_name, tmp_path) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(8)))
        await endpoint.until(lambda: endpoint.running == 5)
        taken = set(endpoint.keys())
        worker.signal(signal.SIGTERM)
        await worker.wait_for("draining")
        endpoint.open.set()
        assert await worker.wait() == 0
        for call_id in taken:
            result = await queue.result(call_id)
            assert result is not None and result.status == "http_200"
        # the calls it had not taken wait for the next worker
        left = [i for i in ids if i not in taken]
        assert [await queue.result(i) for i in left] == [None] * 3
        assert await redis_client.xlen(QueueKeys(queue_name).stream) == 3
        await start_worker(tmp_path)
        assert None not in [await queue.result(i, wait=30) for i in left]
    assert sorted(Counter(endpoint.keys()).values()) == [1] * 8


async def test_a_capping_rule_holds_at_the_endpoint_across_two_workers(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    write_action(actions, endpoint.url + "/v1/capped")
    capping = tmp_path / "capping.json"
    rule = {
        "url": endpoint.url + "/v1/capped",
        "methods": ["POST"],
        "services": {"action": {"rating": {"maxCallsCount": 7, "periodInMs": 600_000}}},
    }
    capping.write_text(json.dumps([rule]))
    await asyncio.gather(
        start_worker(actions, "--capping", capping), start_worker(actions, "--capping", capping)
    )
    async with fleet_queue(queue_name, actions) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(30)))
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    statuses = Counter(r.status for r in results if r is not None)
    assert statuses == {"http_200": 7, "capped": 23}
    assert len(endpoint.seen) == 7


async def test_one_token_request_serves_two_workers_and_a_401_one_refresh(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    # the token cache is keyed by the credentials: a secret unique to this test keeps it apart
    authentication = {
        "type": "customAuthorization",
        "endpoint": endpoint.url + "/token",
        "method": "POST",
        "body": {"bodyType": "json", "bodyParams": {"client": queue_name}},
        "tokenInResponse": "json://access_token",
        "authorizationType": "bearer",
    }
    write_action(tmp_path, endpoint.url + "/v1/ping", authentication=authentication)
    await asyncio.gather(start_worker(tmp_path), start_worker(tmp_path))
    async with fleet_queue(queue_name, tmp_path) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(40)))
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
        assert all(r is not None and r.status == "http_200" for r in results)
        assert endpoint.token_requests == 1
        assert {s.authorization for s in endpoint.seen} == {f"Bearer {token(1)}"}
        sealed = await redis_client.keys("actionrt:tokens:*")
        stored = b"".join([await redis_client.get(k) or b"" for k in sealed])
        assert sealed and token(1).encode() not in stored

        endpoint.revoked.add(token(1))  # the issuer revokes it: both workers meet 401s
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(40)))
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    assert all(r is not None and r.status == "http_200" for r in results)
    assert endpoint.token_requests == 2


async def test_a_worker_serves_the_other_actions_when_one_file_is_broken(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    write_action(tmp_path, "ftp://example.com/nope", name="broken")
    worker = await start_worker(tmp_path)
    assert worker.count("broken.json") >= 1  # reported
    async with fleet_queue(queue_name) as queue:  # unchecked: the worker reports the problem
        good = await queue.submit("ping", params={"n": 1})
        bad = await queue.submit("broken", params={"n": 1})
        ok, failed = await queue.result(good, wait=30), await queue.result(bad, wait=30)
    assert ok is not None and ok.status == "http_200"
    assert failed is not None and failed.status == "internalError"
    assert failed.error is not None and "broken.json: endpoint.url" in failed.error


async def test_a_call_delivered_too_often_goes_to_the_dead_letter_stream(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    keys = QueueKeys(queue_name)
    async with fleet_queue(queue_name) as queue:
        call_id = await queue.submit("ping", params={"n": 1})
        # a consumer takes the call and vanishes without acknowledging it
        await redis_client.xgroup_create(keys.stream, "workers", id="0", mkstream=True)
        await redis_client.xreadgroup("workers", "vanished", {keys.stream: ">"}, count=1)
        await start_worker(tmp_path, "--claim-idle", "0.2", "--max-deliveries", "1")
        result = await queue.result(call_id, wait=30)
    assert result is not None and result.status == "internalError"
    assert result.error is not None and "dead-lettered after 1 deliveries" in result.error
    dead = await redis_client.xrange(keys.dead)
    assert len(dead) == 1 and b"dead-lettered" in dead[0][1][b"reason"]
    assert endpoint.seen == []


async def test_throttled_calls_wait_in_redis_and_survive_a_restart_of_every_worker(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    write_action(actions, endpoint.url + "/v1/throttled")
    throttling = tmp_path / "throttling.json"
    rule = {"urlPattern": endpoint.url + "/v1/throttled", "methods": ["POST"], "maxThroughput": 200}
    throttling.write_text(json.dumps([rule]))
    keys = QueueKeys(queue_name)
    first = await asyncio.gather(*(start_worker(actions, "--throttling", throttling) for _ in range(2)))
    async with fleet_queue(queue_name, actions) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(600)))
        # paced at 200 calls/s, most of them wait in Redis; then every worker stops
        await endpoint.until(lambda: len(endpoint.seen) >= 20)
        for worker in first:
            worker.signal(signal.SIGTERM)
        assert [await w.wait() for w in first] == [0, 0]
        waiting = await redis_client.zcard(keys.throttled)
        assert waiting > 0
        assert len(endpoint.seen) + waiting + await redis_client.xlen(keys.stream) == 600
        await start_worker(actions, "--throttling", throttling)
        results = await asyncio.gather(*(queue.result(i, wait=60) for i in ids))
    assert all(r is not None and r.status == "http_200" for r in results)
    assert sorted(Counter(endpoint.keys()).values()) == [1] * 600  # none lost, none twice
    assert max(r.queued_seconds for r in results if r is not None) > 0


async def test_an_edited_action_file_reaches_every_worker_and_running_calls_finish(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    workers = await asyncio.gather(start_worker(tmp_path), start_worker(tmp_path))
    async with fleet_queue(queue_name) as queue:
        endpoint.open.clear()
        running = await queue.submit("ping", params={"n": 0})
        await endpoint.until(lambda: endpoint.running == 1)
        write_action(tmp_path, endpoint.url + "/v2/ping")  # the edit
        for worker in workers:  # one reloads on the file event, the other on its signal too
            await worker.wait_for("actions reloaded")
        endpoint.open.set()
        first = await queue.result(running, wait=30)
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(1, 21)))
        results = await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    assert first is not None and first.response == {"ok": True, "path": "/v1/ping"}
    assert {r.response["path"] for r in results if r is not None} == {"/v2/ping"}


async def test_health_and_readiness_on_the_metrics_port_and_n_processes(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    import aiohttp

    write_action(tmp_path, endpoint.url + "/v1/ping")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    supervisor = await start_worker(tmp_path, "--processes", "2", "--metrics-port", port, ready=False)
    await supervisor.wait_for("serving", times=2)
    async with aiohttp.ClientSession() as session:
        for each in (port, port + 1):
            async with session.get(f"http://127.0.0.1:{each}/healthz") as live:
                assert live.status == 200
            async with session.get(f"http://127.0.0.1:{each}/readyz") as ready:
                assert ready.status == 200 and (await ready.json()) == {"status": "ready"}
    async with fleet_queue(queue_name) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(20)))
        assert None not in await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    consumers = await redis_client.xinfo_consumers(QueueKeys(queue_name).stream, "workers")
    assert len(consumers) == 2
    supervisor.signal(signal.SIGTERM)
    assert await supervisor.wait() == 0
    assert supervisor.count("drained") == 2


async def test_workers_ride_out_a_redis_outage_with_one_log_line_and_no_call_lost(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    write_action(tmp_path, endpoint.url + "/v1/ping")
    proxy = RedisProxy()
    await proxy.start()
    try:
        worker = await start_worker(tmp_path, redis=proxy.url)
        async with fleet_queue(queue_name) as queue:  # the submitter reaches Redis directly
            before = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(10)))
            assert None not in await asyncio.gather(*(queue.result(i, wait=30) for i in before))
            proxy.down()
            during = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(10, 30)))
            await worker.wait_for("is unreachable")
            proxy.up()
            results = await asyncio.gather(*(queue.result(i, wait=60) for i in during))
    finally:
        await proxy.stop()
    assert [(r.status, r.error) for r in results if r is not None and r.status != "http_200"] == []
    assert None not in results
    assert sorted(Counter(endpoint.keys()).values()) == [1] * 30
    assert worker.count("is unreachable") == 1, "\n".join(worker.lines)


async def test_metrics_on_the_metrics_port_count_the_calls_and_the_queue_depth(
    tmp_path: Path, endpoint: Endpoint, queue_name: str, start_worker: Any
) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as answer,
        ):
            assert answer.status == 200
            text = await answer.text()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    write_action(tmp_path, endpoint.url + "/v1/ping")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint.open.clear()  # the endpoint holds every answer: the calls stay in the stream
    await start_worker(tmp_path, "--concurrency", "5", "--metrics-port", port)
    depth = ("actionrt_queue_depth", (("queue", queue_name),))
    async with fleet_queue(queue_name) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(20)))
        await endpoint.until(lambda: endpoint.running == 5)
        assert (await scrape(port))[depth] == 20  # 5 being worked on, 15 waiting
        endpoint.open.set()
        assert None not in await asyncio.gather(*(queue.result(i, wait=30) for i in ids))
    after = await scrape(port)
    assert after[depth] == 0
    assert after[("actionrt_calls_total", (("action", "ping"), ("status", "http_200")))] == 20
