"""`actionrt serve --redis`: `POST /actions/{name}/invoke?async=true` queues the call for real
`actionrt worker` subprocesses on the real Redis; `GET /calls/{callId}` answers its result."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fleet_support import REDIS_URL, Endpoint, write_action

from actionrt.cli import app as cli
from actionrt.fleet.redis_streams import QueueKeys
from actionrt.service import create_app


def service_app(tmp_path: Path, redis: str | None, queue: str) -> FastAPI:
    return create_app(
        tmp_path / "store.db",
        allow_private_network=True,
        secret_key=Fernet.generate_key(),
        entry_points=False,
        redis_url=redis,
        queue=queue,
    )


async def close(app: FastAPI) -> None:
    state = app.state.service
    if state.queue is not None:
        await state.queue.aclose()
    await state.calls.aclose()
    state.store.close()


@pytest.fixture
async def fleet_service(
    tmp_path: Path, endpoint: Endpoint, queue_name: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    """The service on the test's queue with the action `ping` (POST endpoint/ping, integer `n`),
    and the folder holding the same action's file for the workers."""
    folder = tmp_path / "actions"
    folder.mkdir()
    document = json.loads(write_action(folder, f"{endpoint.url}/ping").read_text())
    app = service_app(tmp_path, REDIS_URL, queue_name)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8700") as client:
        assert (await client.post("/actions", json=document)).status_code == 201
        yield client, folder
    await close(app)


async def test_an_async_invoke_is_served_by_a_worker_and_its_result_read_by_call_id(
    fleet_service: tuple[httpx.AsyncClient, Path],
    endpoint: Endpoint,
    start_worker: Callable[..., Any],
) -> None:
    client, folder = fleet_service
    await start_worker(folder)
    accepted = await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 7}})
    assert accepted.status_code == 202, accepted.text
    call_id = accepted.json()["callId"]
    assert accepted.json()["action"] == "ping"
    assert accepted.headers["location"] == f"/calls/{call_id}"
    done = await client.get(f"/calls/{call_id}", params={"wait": 20})
    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["callId"], result["status"], result["ok"], result["httpStatus"]) == (
        call_id,
        "http_200",
        True,
        200,
    )
    assert result["response"] == {"ok": True, "path": "/ping"}
    assert [(s.path, s.body, s.key) for s in endpoint.seen] == [("/ping", {"n": 7}, call_id)]
    # Kept: asked again, the same result without another call.
    again = await client.get(f"/calls/{call_id}")
    assert again.status_code == 200 and again.json() == result
    assert len(endpoint.seen) == 1


async def test_an_async_invoke_answers_the_same_result_model_as_a_sync_one(
    fleet_service: tuple[httpx.AsyncClient, Path], start_worker: Callable[..., Any]
) -> None:
    client, folder = fleet_service
    await start_worker(folder)
    sync = (await client.post("/actions/ping/invoke", json={"params": {"n": 1}})).json()
    call_id = (await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 1}})).json()[
        "callId"
    ]
    queued = (await client.get(f"/calls/{call_id}?wait=20")).json()
    assert set(queued) == set(sync)
    varying = {"callId", "elapsed", "journeyFields"}
    assert {k: v for k, v in queued.items() if k not in varying} == {
        k: v for k, v in sync.items() if k not in varying
    }


async def test_a_submit_with_bad_input_or_an_unknown_action_is_refused_and_nothing_is_queued(
    fleet_service: tuple[httpx.AsyncClient, Path], redis_client: aioredis.Redis, queue_name: str
) -> None:
    client, _ = fleet_service
    sync = (await client.post("/actions/ping/invoke", json={"params": {"n": "seven"}})).json()
    assert sync["status"] == "internalError"
    refused = await client.post("/actions/ping/invoke?async=true", json={"params": {"n": "seven"}})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    # The message invoke gives in its result, at the variable's path.
    assert sync["error"] == f"{problem['problems'][0]['path']}: {problem['problems'][0]['message']}"
    assert problem["problems"][0]["path"] == "n"
    unknown = await client.post("/actions/nothere/invoke?async=true", json={"params": {"n": 1}})
    assert unknown.status_code == 404 and "nothere" in unknown.json()["detail"]
    unread = await client.post("/actions/ping/invoke?async=true", json={"parms": {}})
    assert unread.status_code == 422 and unread.json()["problems"][0]["path"] == "parms"
    assert await redis_client.xlen(QueueKeys(queue_name).stream) == 0


async def test_get_calls_tells_pending_from_unknown_and_waits_for_a_result(
    fleet_service: tuple[httpx.AsyncClient, Path], start_worker: Callable[..., Any]
) -> None:
    client, folder = fleet_service
    call_id = (await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 2}})).json()[
        "callId"
    ]
    pending = await client.get(f"/calls/{call_id}")  # no worker yet
    assert pending.status_code == 202 and pending.json() == {"callId": call_id, "done": False}
    assert pending.headers["retry-after"] == "1"
    unknown = await client.get("/calls/0123456789abcdef0123456789abcdef")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    too_long = await client.get(f"/calls/{call_id}", params={"wait": 31})
    assert too_long.status_code == 422 and too_long.json()["problems"][0]["path"] == "wait"
    await start_worker(folder)
    waited = await client.get(f"/calls/{call_id}", params={"wait": 20})  # answered when stored
    assert waited.status_code == 200 and waited.json()["status"] == "http_200"


async def test_the_same_idempotency_key_names_the_same_call_made_once(
    fleet_service: tuple[httpx.AsyncClient, Path], endpoint: Endpoint, start_worker: Callable[..., Any]
) -> None:
    client, folder = fleet_service
    keyed = {"Idempotency-Key": "journey-7:profile-42:node-3"}
    first = await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 3}}, headers=keyed)
    second = await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 3}}, headers=keyed)
    assert first.status_code == second.status_code == 202
    assert first.json()["callId"] == second.json()["callId"]
    await start_worker(folder)
    done = await client.get(f"/calls/{first.json()['callId']}", params={"wait": 20})
    assert done.status_code == 200
    assert [s.body for s in endpoint.seen] == [{"n": 3}]


async def test_without_redis_async_calls_are_refused_with_a_problem_naming_serve_redis(
    tmp_path: Path, queue_name: str
) -> None:
    app = service_app(tmp_path, None, queue_name)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8700"
    ) as client:
        await client.post(
            "/actions", json=json.loads(write_action(tmp_path, "http://127.0.0.1:9/x").read_text())
        )
        refused = await client.post("/actions/ping/invoke?async=true", json={"params": {"n": 1}})
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert "--redis" in refused.json()["detail"]
        result = await client.get("/calls/0123456789abcdef")
        assert result.status_code == 409 and "--redis" in result.json()["detail"]
    await close(app)


def test_serve_takes_redis_and_queue_and_refuses_what_is_not_a_redis_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import uvicorn

    from actionrt.cli import serve_commands

    seen: dict[str, Any] = {}

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen["app"], seen["access_log"] = server.config.app, server.config.access_log
        for listener in sockets:
            listener.close()

    monkeypatch.setattr(serve_commands, "bind", lambda host, port: socket.create_server(("127.0.0.1", 0)))
    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.delenv("ACTIONRT_API_TOKEN", raising=False)
    store = ["serve", "--store", str(tmp_path / "store.db"), "--no-examples"]
    started = CliRunner().invoke(
        cli, [*store, "--redis", "redis://:hunter2@127.0.0.1:6379/0", "--queue", "q1"]
    )
    assert started.exit_code == 0, started.output
    state = seen["app"].state.service
    assert (state.redis_url, state.queue.name) == ("redis://:hunter2@127.0.0.1:6379/0", "q1")
    assert "queue 'q1' on redis://127.0.0.1:6379/0" in started.output and "hunter2" not in started.output
    assert seen["access_log"] is False  # a line per call already; --access-log adds uvicorn's
    wrong = CliRunner().invoke(cli, [*store, "--redis", "http://user:hunter2@example.com"])
    assert wrong.exit_code != 0 and "not a Redis URL" in wrong.output and "hunter2" not in wrong.output
    plain = CliRunner().invoke(cli, [*store, "--access-log"])
    assert plain.exit_code == 0 and seen["access_log"] is True
    assert seen["app"].state.service.queue is None
