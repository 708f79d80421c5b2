"""Console-fed workers: a real `actionrt serve --redis` publishes its catalog, real
`actionrt worker --from-service` subprocesses serve it, a real endpoint on loopback receives the
calls. An edit saved through the API reaches the workers; a call running at the edit finishes
on the definition it started with; a deleted action's calls end `unknownAction`. The cases that
start subprocesses are marked slow (CI runs them); test_catalog_publish.py covers the same
code in process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from fleet_support import REDIS_URL, Endpoint, RedisProxy, WorkerProcess

from actionrt.fleet import Queue
from actionrt.fleet.catalog import CatalogKeys, write_snapshot
from actionrt.results import InvocationResult

BANNER = re.compile(r"actionrt service on (http://\S+?)/ ")


class ServiceProcess:
    """An `actionrt serve` subprocess and an API client to it."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.api = httpx.AsyncClient(base_url=url, headers={"X-CSRF-Token": "script"})

    async def create(self, document: dict[str, Any]) -> None:
        answer = await self.api.post("/actions", json=document)
        assert answer.status_code == 201, answer.text

    async def edit(self, name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """GET the action, change its document, PUT it back with If-Match."""
        current = await self.api.get(f"/actions/{name}")
        document = current.json()["action"]
        change(document)
        answer = await self.api.put(
            f"/actions/{name}", json=document, headers={"If-Match": current.headers["etag"]}
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["action"])

    async def delete(self, name: str) -> None:
        current = await self.api.get(f"/actions/{name}")
        answer = await self.api.delete(f"/actions/{name}", headers={"If-Match": current.headers["etag"]})
        assert answer.status_code == 204, answer.text


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The service's key, in the environment the service and the workers are started with."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ACTIONRT_SECRET_KEY", key)
    return key


@pytest.fixture
async def start_service(tmp_path: Path, queue_name: str, secret_key: str) -> AsyncIterator[Any]:
    started: list[ServiceProcess] = []

    async def start() -> ServiceProcess:
        command = [
            sys.executable,
            "-c",
            "from actionrt.cli import main; main()",
            "serve",
            "--port",
            "0",
            "--store",
            str(tmp_path / "store.db"),
            "--no-examples",
            "--allow-private-network",
            "--redis",
            REDIS_URL,
            "--queue",
            queue_name,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ACTIONRT_DISABLE_PLUGIN_AUTOLOAD": "1"}
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        assert process.stdout is not None
        async with asyncio.timeout(60):
            line = (await process.stdout.readline()).decode()
        found = BANNER.search(line)
        assert found is not None, f"no banner from serve: {line!r}"
        service = ServiceProcess(process, found.group(1))
        started.append(service)
        # The socket listens before the banner: this waits in its backlog until the app is up.
        assert (await service.api.get("/healthz", timeout=60)).status_code == 200
        return service

    yield start
    for service in started:
        await service.api.aclose()
        if service.process.returncode is None:
            service.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await service.process.wait()


def ping(url: str, **extra: Any) -> dict[str, Any]:
    """An action document: POST `url` with the variable integer `n`, the call id as its key."""
    return {
        "name": "ping",
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        "idempotencyKey": "Idempotency-Key",
        **extra,
    }


async def call(queue: Queue, action: str = "ping", n: int = 0) -> InvocationResult:
    result = await queue.result(await queue.submit(action, params={"n": n}), wait=30)
    assert result is not None
    return result


@pytest.mark.slow  # worker and service subprocesses: 15 to 50 s on the shared box
async def test_a_console_edit_reaches_every_worker_and_a_running_call_finishes_on_the_old_one(
    endpoint: Endpoint,
    queue_name: str,
    redis_client: aioredis.Redis,
    start_service: Any,
    start_worker: Any,
) -> None:
    service = await start_service()
    await service.create(ping(endpoint.url + "/v1/ping"))
    workers: list[WorkerProcess] = await asyncio.gather(
        start_worker("--from-service"), start_worker("--from-service")
    )
    async with Queue(REDIS_URL, name=queue_name) as queue:
        assert (await call(queue)).response == {"ok": True, "path": "/v1/ping"}
        endpoint.open.clear()  # the endpoint holds its answers: the next call stays in flight
        running = asyncio.create_task(call(queue, n=1))
        await endpoint.until(lambda: endpoint.running == 1)

        def to_v2(document: dict[str, Any]) -> None:
            document["endpoint"]["url"] = endpoint.url + "/v2/ping"
            document["request"]["sample"]["edited"] = True  # a constant field of the payload

        await service.edit("ping", to_v2)
        for worker in workers:
            await worker.wait_for("actions reloaded")
        endpoint.open.set()
        first = await running
        # every worker now serves the edit: 20 calls, spread over both
        after = await asyncio.gather(*(call(queue, n=n) for n in range(2, 22)))
    assert first.response == {"ok": True, "path": "/v1/ping"}  # started on the old definition
    assert endpoint.seen[1].body == {"n": 1}
    assert {r.response["path"] for r in after} == {"/v2/ping"}
    assert all(s.body["edited"] is True for s in endpoint.seen[2:])


@pytest.mark.slow  # worker and service subprocesses: 15 to 50 s on the shared box
async def test_a_deleted_action_ends_its_calls_unknown_action_and_a_new_one_is_served(
    endpoint: Endpoint,
    queue_name: str,
    redis_client: aioredis.Redis,
    start_service: Any,
    start_worker: Any,
) -> None:
    service = await start_service()
    await service.create(ping(endpoint.url + "/v1/ping"))
    worker = await start_worker("--from-service")
    async with Queue(REDIS_URL, name=queue_name) as queue:
        assert (await call(queue)).status == "http_200"
        await service.delete("ping")
        await worker.wait_for("actions reloaded: 0 serving")
        gone = await call(queue)
        await service.create({**ping(endpoint.url + "/v1/pong"), "name": "pong"})
        await worker.wait_for("actions reloaded: 1 serving")
        pong = await call(queue, "pong")
    assert (gone.status, gone.error_code, gone.attempts) == ("internalError", "unknownAction", 0)
    assert "ping" in (gone.error or "")
    assert pong.response == {"ok": True, "path": "/v1/pong"}
    assert len(endpoint.seen) == 2


async def published_action(redis_client: aioredis.Redis, changes: Any, keys: CatalogKeys, name: str) -> bytes:
    """Action `name`'s published document, once a publication holds it: the service publishes
    after answering an edit, so it is read again at each announcement on `changes`."""
    async with asyncio.timeout(30):
        while (found := await redis_client.hget(keys.actions, name)) is None:
            await changes.get_message(ignore_subscribe_messages=True, timeout=None)
    return bytes(found)


@pytest.mark.slow  # worker and service subprocesses: 15 to 50 s on the shared box
async def test_console_secrets_reach_a_worker_with_the_service_key_and_not_one_with_another(
    endpoint: Endpoint,
    queue_name: str,
    redis_client: aioredis.Redis,
    start_service: Any,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = await start_service()
    document = ping(endpoint.url + "/v1/ping", authentication={"type": "bearer", "token": "tok-s3cret"})
    keys = CatalogKeys(queue_name)
    async with redis_client.pubsub() as changes:
        await changes.subscribe(keys.changed)
        await service.create(document)  # answered before its publication, which follows
        published = await published_action(redis_client, changes, keys, "ping")
    assert b"tok-s3cret" not in published  # a reference, sealed
    sealed = await redis_client.hvals(keys.secrets)  # written in the same transaction
    assert len(sealed) == 1 and b"tok-s3cret" not in sealed[0]
    async with Queue(REDIS_URL, name=queue_name) as queue:
        keyed = await start_worker("--from-service")
        served = await call(queue)
        keyed.signal(signal.SIGTERM)
        assert await keyed.wait() == 0
        monkeypatch.setenv("ACTIONRT_SECRET_KEY", Fernet.generate_key().decode())
        other_key = await start_worker("--from-service")
        wrong = await call(queue)
    assert served.status == "http_200"
    assert [s.authorization for s in endpoint.seen] == ["Bearer tok-s3cret"]  # only the keyed worker's call
    assert (wrong.status, wrong.error_code) == ("internalError", "actionNotLoaded")
    assert "sealed with another key than ACTIONRT_SECRET_KEY" in (wrong.error or "")
    assert other_key.count("sealed with another key than ACTIONRT_SECRET_KEY") == 1
    assert not any("tok-s3cret" in line for w in (keyed, other_key) for line in w.lines)


async def test_a_worker_from_the_service_needs_no_paths_and_refuses_both(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from actionrt.cli import app

    runner = CliRunner()
    neither = runner.invoke(app, ["worker", "--redis", REDIS_URL])
    both = runner.invoke(app, ["worker", str(tmp_path), "--from-service", "--redis", REDIS_URL])
    assert neither.exit_code == 2 and "--from-service" in neither.output
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.slow  # worker and service subprocesses: 15 to 50 s on the shared box
async def test_a_worker_started_before_the_service_and_cut_off_at_an_edit_catches_up(
    endpoint: Endpoint, queue_name: str, redis_client: aioredis.Redis, start_worker: Any
) -> None:
    keys = CatalogKeys(queue_name)
    proxy = RedisProxy()
    await proxy.start()
    try:
        worker = await start_worker("--from-service", redis=proxy.url)
        assert worker.count("no catalog published on queue") == 1
        assert worker.count("serving 0 action(s)") == 1
        await write_snapshot(redis_client, keys, {"ping": ping(endpoint.url + "/v1/ping")}, {})
        await worker.wait_for("actions reloaded: 1 serving")
        proxy.down()
        await worker.wait_for("is unreachable")
        # announced while the worker cannot hear it: pub/sub does not keep it
        await write_snapshot(redis_client, keys, {"ping": ping(endpoint.url + "/v2/ping")}, {})
        proxy.up()
        await worker.wait_for("actions reloaded: 1 serving", times=2)
        async with Queue(REDIS_URL, name=queue_name) as queue:
            result = await call(queue)
    finally:
        await proxy.stop()
    assert result.response == {"ok": True, "path": "/v2/ping"}


def test_serve_refuses_a_redis_url_that_is_not_one_without_showing_its_password(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from actionrt.cli import app

    store = ["--store", str(tmp_path / "store.db"), "--no-examples"]
    refused = CliRunner().invoke(app, ["serve", *store, "--redis", "http://ops:hunter2@redis.internal"])
    assert refused.exit_code == 1
    assert "--redis http://redis.internal: not a Redis URL" in refused.output
    assert "hunter2" not in refused.output


def test_a_worker_refuses_a_malformed_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from actionrt.cli import app

    monkeypatch.setenv("ACTIONRT_SECRET_KEY", "not-a-key")
    refused = CliRunner().invoke(app, ["worker", "--from-service", "--redis", REDIS_URL, "--queue", "unused"])
    assert refused.exit_code == 1
    assert "ACTIONRT_SECRET_KEY is not a Fernet key" in refused.output
