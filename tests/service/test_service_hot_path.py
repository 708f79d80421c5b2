"""The invoke hot path (`hot_path.py`): a plain invoke is answered without the middleware stack
and the router, with the route's answer; every other request to the route gets the full
stack's answer, word for word (security refusals, problems, 404s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from service_support import Endpoint, action, client_for, make_app

from actionrt.service.api import parse_model
from actionrt.service.app import MAX_BODY
from actionrt.service.calls import CallInput
from actionrt.service.hot_path import plain_call
from actionrt.service.models import MAX_DEPTH, CallBody
from actionrt.service.security import json_media


@dataclass
class Stack:
    """Counts the requests that enter the application's middleware stack."""

    app: FastAPI
    entered: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        inner = self.app.build_middleware_stack()

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.entered.append(f"{scope['method']} {scope['path']}")
            await inner(scope, receive, send)

        self.app.middleware_stack = counted


@pytest.fixture
async def hot(tmp_path: Path, endpoint: Endpoint) -> AsyncIterator[tuple[httpx.AsyncClient, Stack]]:
    app = make_app(tmp_path, examples=None)
    stack = Stack(app)
    async with client_for(app) as client:
        created = await client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
        assert created.status_code == 201
        stack.entered.clear()
        yield client, stack
    await app.state.service.calls.aclose()
    app.state.service.store.close()


CALL = {"params": {"email": "ada@example.com"}}


async def test_a_plain_invoke_skips_the_stack_and_answers_what_the_route_answers(
    hot: tuple[httpx.AsyncClient, Stack], endpoint: Endpoint
) -> None:
    client, stack = hot
    fast = await client.post("/actions/notify/invoke", json=CALL)
    assert stack.entered == []
    assert (await client.post("/actions/notify/invoke?async=false", json=CALL)).status_code == 200
    assert stack.entered == []  # what generated clients send: served plainly too
    routed = await client.post("/actions/notify/invoke?async=no", json=CALL)  # any other query: the route
    assert stack.entered == ["POST /actions/notify/invoke"]
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    one, other = fast.json(), routed.json()
    assert set(one) == set(other) and one["callId"] and one["callId"] != other["callId"]
    assert {k: v for k, v in one.items() if k not in ("callId", "elapsed")} == {
        k: v for k, v in other.items() if k not in ("callId", "elapsed")
    }
    assert [r.body for r in endpoint.received] == [{"email": "ada@example.com", "count": 1}] * 3
    counts = (await client.get("/actions/notify/calls")).json()["counts"]
    assert counts == {"http_200": 3}  # the hot path's calls are recorded too


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b'{"params": ', {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'{"parms": {}}', {"content-type": "application/json"}, 422, "parms"),
        (b"{}", {"content-type": "text/plain"}, 403, "JSON body"),
        (b"{}", {"content-type": "text/plain", "x-csrf-token": "x"}, 415, "application/json"),
        (b"{}", {"content-type": "application/json", "origin": "https://evil.example"}, 403, "Origin"),
        (b"{}", {"content-type": "application/json", "cookie": "actionrt_csrf=abc"}, 403, "CSRF"),
        (b"{}", {"content-type": "application/json", "host": "attacker.example"}, 403, "loopback Host"),
        # FastAPI's own body limit (plain text, as before the hot path)
        (b"x" * (MAX_BODY + 1), {"content-type": "application/json"}, 413, "Content Too Large"),
    ],
)
async def test_every_other_request_gets_the_full_stacks_answer(
    hot: tuple[httpx.AsyncClient, Stack], body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    client, stack = hot
    answer = await client.post("/actions/notify/invoke", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    if status != 413:
        assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.text
    assert stack.entered == ["POST /actions/notify/invoke"]


async def test_an_unknown_action_is_the_routes_404(hot: tuple[httpx.AsyncClient, Stack]) -> None:
    client, stack = hot
    missing = await client.post("/actions/nothere/invoke", json=CALL)
    assert missing.status_code == 404 and "nothere" in missing.json()["detail"]
    assert stack.entered == ["POST /actions/nothere/invoke"]


async def test_with_an_api_token_only_the_bearer_is_served_plainly(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    app = make_app(tmp_path, examples=None, api_token="s3cret-token")
    stack = Stack(app)
    bearer = {"authorization": "Bearer s3cret-token"}
    async with client_for(app) as client:
        await client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"), headers=bearer)
        stack.entered.clear()
        refused = await client.post("/actions/notify/invoke", json=CALL)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = await client.post(
            "/actions/notify/invoke", json=CALL, headers={"authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert stack.entered == ["POST /actions/notify/invoke"] * 2
        served = await client.post("/actions/notify/invoke", json=CALL, headers=bearer)
        assert served.status_code == 200 and served.json()["status"] == "http_200"
        assert len(stack.entered) == 2
    await app.state.service.calls.aclose()
    app.state.service.store.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"params": {"email": "ada@example.com", "n": 12345678901234567890123, "f": 1e400, "u": "\\u00e9"}}',
        b'{"params": {"a": 1, "a": 2}, "params": {"b": 2.50}}',
        b'{"params": {}, "headers": {"x-a": "1"}, "query": {"q": [1, {"b": null}]}, "path": "/p"}',
        b' {"path": null} ',
        b"{}",
    ],
)
def test_a_plain_body_is_read_as_the_route_reads_it(body: bytes) -> None:
    routed = parse_model(body, "application/json", CallBody)
    expected = CallInput(routed.params, routed.headers, routed.query, routed.path, routed.timeout)
    assert plain_call(body, "application/json; charset=utf-8") == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"params": {}, "timeout": 5}', "application/json"),  # its bounds are the model's
        (b'{"parms": {}}', "application/json"),
        (b'{"params": [1]}', "application/json"),
        (b'{"path": 3}', "application/json"),
        (b"[]", "application/json"),
        (b'{"params": ', "application/json"),
        (b"", "application/json"),
        (b'{"params": ' + b'{"a": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH + b"}", "application/json"),
        (b'{"params": {}}', "text/plain"),
    ],
)
def test_any_other_body_is_the_models_to_read(body: bytes, content_type: str) -> None:
    assert plain_call(body, content_type) is None


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        (" Application/JSON ; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/jsonp", False),
        ("text/plain", False),
        ("", False),
    ],
)
def test_a_json_body_is_one_its_content_type_names_json(content_type: str, json: bool) -> None:
    assert json_media(content_type) is json
