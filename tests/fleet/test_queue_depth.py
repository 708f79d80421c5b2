"""A fleet queue's depth read with the fleet's own functions on the real Redis: `Queue.depth`
(what the worker's `/metrics` and the service's Monitoring page show) and the service's
`GET /monitoring/queue` over it."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from fleet_support import REDIS_URL

from actionrt.fleet import Queue, QueueUnavailableError
from actionrt.fleet.calls import failed_result
from actionrt.fleet.engine import QueueDepth
from actionrt.service.app import create_app


async def test_depth_counts_the_calls_no_worker_took_and_the_dead_letters(
    queue_name: str, redis_client: aioredis.Redis
) -> None:
    async with Queue(REDIS_URL, name=queue_name) as queue:
        assert await queue.depth() == QueueDepth(queue_name, 0, 0)
        for n in range(4):
            await queue.submit("ping", {"n": n})
        assert await queue.depth() == QueueDepth(queue_name, 4, 0)
        engine = queue.engine
        await engine.prepare()
        (delivery,) = await engine.read("test-consumer", 1, 0.1)
        assert await queue.depth() == QueueDepth(queue_name, 4, 0)  # taken, not done: still counted
        await engine.dead_letter(delivery, "given up", failed_result("ping", "given up", code="deadLettered"))
        assert await queue.depth() == QueueDepth(queue_name, 3, 1)


def closed_port() -> int:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_depth_of_an_unreachable_redis_is_a_queue_unavailable_error() -> None:
    async with Queue(f"redis://127.0.0.1:{closed_port()}/0", name="nowhere") as queue:
        with pytest.raises(
            QueueUnavailableError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is unreachable"
        ):
            await queue.depth()


def client(application: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1:8700")  # type: ignore[arg-type]


def service(tmp_path: Path, **options: object) -> object:
    return create_app(tmp_path / "store.db", secret_key=Fernet.generate_key(), entry_points=False, **options)  # type: ignore[arg-type]


async def test_monitoring_queue_shows_the_depth_of_the_services_queue(
    queue_name: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    async with Queue(REDIS_URL, name=queue_name) as submitter, Queue(REDIS_URL, name=queue_name) as watched:
        for n in range(5):
            await submitter.submit("ping", {"n": n})
        application = service(tmp_path, queue_depth=watched.depth)
        async with client(application) as http:
            hour = (await http.get("/monitoring/queue")).json()
            await submitter.submit("ping", {"n": 5})
            day = (await http.get("/monitoring/queue?window=day")).json()
            wrong = await http.get("/monitoring/queue?window=week")
    assert hour["fleet"] is True and hour["queue"] == queue_name and hour["step"] == 60
    assert len(hour["waiting"]) == 60 and hour["waiting"][-1] == 5 and hour["dead"][-1] == 0
    assert hour["last"]["waiting"] == 5 and hour["last"]["dead"] == 0
    assert len(day["waiting"]) == 96 and day["waiting"][-1] == 6 and day["last"]["waiting"] == 6
    assert wrong.status_code == 422


async def test_monitoring_queue_without_a_fleet_or_with_redis_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(service(tmp_path / "alone")) as http:
        assert (await http.get("/monitoring/queue")).json() == {"fleet": False, "window": "hour"}
        page = (await http.get("/console/monitoring")).text
    assert 'id="queue-chart"' not in page and 'id="mon-queued"' not in page
    async with Queue(f"redis://127.0.0.1:{closed_port()}/0", name="nowhere") as queue:
        application = service(tmp_path / "out", queue_depth=queue.depth)
        with caplog.at_level(logging.WARNING, logger="actionrt.service"):
            async with client(application) as http:
                first = await http.get("/monitoring/queue")
                again = await http.get("/monitoring/queue")
                page = (await http.get("/console/monitoring")).text
    assert first.status_code == 200 and first.json()["last"] is None  # nothing read yet, no error page
    assert again.json()["waiting"] == [None] * 60
    assert 'id="queue-chart"' in page and 'id="mon-queued"' in page
    said = [r.getMessage() for r in caplog.records if "queue's depth could not be read" in r.getMessage()]
    assert len(said) == 1  # once, not at every reading


async def test_monitoring_queue_reads_the_queue_serve_invokes_through(
    queue_name: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    # `serve --redis` keeps its queue on the service state (`state.queue`): without a
    # `queue_depth` of its own, the Monitoring page reads that queue's depth.
    application = service(tmp_path)
    async with Queue(REDIS_URL, name=queue_name) as queue, client(application) as http:
        assert (await http.get("/monitoring/queue")).json()["fleet"] is False
        application.state.service.queue = queue  # type: ignore[attr-defined]
        await queue.submit("ping", {"n": 1})
        shown = (await http.get("/monitoring/queue")).json()
    assert shown["fleet"] is True and shown["queue"] == queue_name and shown["last"]["waiting"] == 1
