"""Runtime.invoke through the HTTP seam: HttpxTransport with respx, no network at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from actionrt.errors import UnknownActionError, ValidationError
from actionrt.guard import DestinationPolicy
from actionrt.http import HttpRequest, HttpResponse, HttpxTransport
from actionrt.limits import Admission
from actionrt.retry import Backoff
from actionrt.runtime import Runtime

API = "https://api.example.com"


async def public_dns(host: str, port: int) -> list[tuple[str, int]]:
    return [("93.184.216.34", port)]  # every name is one public address; no DNS is asked


def write(folder: Path, **fields: Any) -> None:
    document: dict[str, Any] = {
        "name": "crmUpdate",
        "endpoint": {
            "url": API + "/v3/contacts/",
            "method": "PUT",
            "dynamicPath": True,
            "headers": [
                {"name": "x-api-version", "value": "2"},
                {"name": "x-request-id", "variable": True, "label": "Request"},
            ],
            "queryParameters": [{"name": "locale", "variable": True, "label": "Locale", "optional": True}],
        },
        "request": {
            "sample": {"stage": "lead", "score": 1},
            "variables": {"stage": {"label": "Stage"}, "score": {"label": "Score"}},
        },
        "timeout": 5,
    }
    document.update(fields)
    (folder / f"{document['name']}.json").write_text(json.dumps(document))


def make_runtime(folder: Path, **options: Any) -> Runtime:
    options.setdefault("transport", HttpxTransport(httpx.AsyncClient()))
    options.setdefault("policy", DestinationPolicy(False, resolver=public_dns))
    options.setdefault("backoff", Backoff(base=0.001, cap=0.002))
    return Runtime.from_path(folder, plugins=(), **options)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    write(tmp_path)
    async with make_runtime(tmp_path) as opened:
        yield opened


PARAMS = {"stage": "customer", "score": "7"}


@respx.mock
async def test_the_request_is_composed_from_the_action_and_the_call(runtime: Runtime) -> None:
    route = respx.put(API + "/v3/contacts/ada/profile").respond(200, json={"id": "42"})
    result = await runtime.invoke(
        "crmUpdate",
        PARAMS,
        headers={"x-request-id": "r-1"},
        query={"locale": "fr"},
        path="ada/profile",
    )
    assert result.ok and result.response == {"id": "42"}
    sent = route.calls.last.request
    assert sent.url == API + "/v3/contacts/ada/profile?locale=fr"
    assert sent.headers["x-api-version"] == "2" and sent.headers["x-request-id"] == "r-1"
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(sent.content) == {"stage": "customer", "score": 7}
    assert result.endpoint == API + "/v3/contacts/"  # the path (personal data) stays out
    assert result.method == "PUT"


@respx.mock
async def test_network_errors_are_retried_then_succeed(runtime: Runtime) -> None:
    respx.put(API + "/v3/contacts/ada").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.Response(200, json={})]
    )
    result = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="ada")
    # A refused connection sent nothing: two requests were written, the reset one and the last.
    assert result.ok and result.attempts == 2 and result.sent
    assert (result.origin_error_class, result.origin_error_code) == ("error", "connect")


@respx.mock
async def test_bad_input_is_an_internal_error_and_nothing_is_sent(runtime: Runtime) -> None:
    route = respx.put(url__startswith=API).respond(200)
    cases = [
        ({"stage": "x"}, {"x-request-id": "r"}, "ada", "score: required variable is missing"),
        (PARAMS, {}, "ada", "headers.x-request-id: required"),
        (PARAMS, {"x-request-id": "r"}, None, "path: this action needs a dynamic path"),
        (PARAMS, {"x-request-id": "r"}, "../admin", "path: '.' and '..'"),
    ]
    for params, headers, path, message in cases:
        result = await runtime.invoke("crmUpdate", params, headers=headers, path=path)
        assert result.status == "internalError" and result.attempts == 0
        assert result.error is not None and result.error.startswith(message)
        assert (result.error_class, result.error_code) == ("error", "input")
    assert not route.called


async def test_an_unknown_action_raises(runtime: Runtime) -> None:
    with pytest.raises(UnknownActionError, match="crmUpdate"):
        await runtime.invoke("nope")


@respx.mock
async def test_a_401_without_a_token_scheme_is_not_retried(tmp_path: Path) -> None:
    write(tmp_path, authentication={"type": "basic", "username": "u", "password": "p"})
    route = respx.put(API + "/v3/contacts/a").respond(401)
    async with make_runtime(tmp_path) as runtime:
        result = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
    assert result.status == "http_401" and result.attempts == 1
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")


@respx.mock
async def test_a_destination_the_policy_refuses_is_never_called(tmp_path: Path) -> None:
    write(tmp_path)
    route = respx.put(url__startswith=API).respond(200)
    policy = DestinationPolicy(False, deny_domains=["example.com"], resolver=public_dns)
    async with make_runtime(tmp_path, policy=policy) as runtime:
        result = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
    assert result.status == "internalError" and result.error_code == "destinationRefused"
    assert not route.called


class BrokenTransport:
    async def send(self, request: HttpRequest) -> HttpResponse:
        raise RuntimeError("a bug in a transport plugin")

    async def aclose(self) -> None:
        return None


async def test_invoke_never_raises_for_what_happens_to_one_call(tmp_path: Path) -> None:
    write(tmp_path)
    async with make_runtime(tmp_path, transport=BrokenTransport()) as runtime:
        result = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
    assert result.status == "internalError" and result.error_code == "unexpected"


class QueueingLimits:
    """Limits that admit every attempt after a (pretend) wait in a throttling queue."""

    max_connections = None  # no capping rule limits connections

    def __init__(self) -> None:
        self.admitted = 0

    def endpoint(self, method: str, url: str) -> QueueingLimits:
        return self

    def admit_now(self) -> None:
        return None  # always through the queue

    async def admit(self) -> Admission:
        self.admitted += 1
        return Admission(False, 0.25)

    def record_latency(self, seconds: float) -> None:
        return None

    async def aclose(self) -> None:
        return None


@respx.mock
async def test_every_attempt_is_admitted_and_queue_time_is_reported(tmp_path: Path) -> None:
    write(tmp_path)
    respx.put(API + "/v3/contacts/a").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={})])
    limits = QueueingLimits()
    async with make_runtime(tmp_path, limits=limits) as runtime:
        result = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
    assert result.ok and result.attempts == 2 and limits.admitted == 2
    assert result.queued_seconds == 0.5


def test_an_unloadable_client_certificate_is_a_validation_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        endpoint={
            "url": API + "/x",
            "method": "POST",
            "clientCertificate": {"certFile": str(tmp_path / "none.pem"), "keyFile": "k.pem"},
        },
    )
    with pytest.raises(ValidationError, match="clientCertificate"):
        make_runtime(tmp_path)


@respx.mock
def test_the_sync_facade(tmp_path: Path) -> None:
    write(tmp_path)
    respx.put(API + "/v3/contacts/a").respond(200, json={"n": 1})
    with make_runtime(tmp_path) as runtime:
        result = runtime.invoke_sync("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
        with pytest.raises(UnknownActionError):
            runtime.invoke_sync("nope")
        assert runtime.actions == ["crmUpdate"]
    assert result.ok and result.response == {"n": 1}


@respx.mock
async def test_invoke_sync_refuses_to_run_on_its_own_loop(tmp_path: Path) -> None:
    write(tmp_path)
    respx.put(API + "/v3/contacts/a").respond(200, json={})
    runtime = make_runtime(tmp_path)
    try:
        runtime.invoke_sync("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")
        loop = runtime._loop
        assert loop is not None

        async def nested() -> None:
            runtime.invoke_sync("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="a")

        with pytest.raises(RuntimeError, match="own loop"):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(nested(), loop))
    finally:
        runtime.close()


@respx.mock
async def test_an_action_replaced_with_put_action_is_called_as_now_defined(tmp_path: Path) -> None:
    """What the engine precomputes per action (body template, URL, headers, method, timeout,
    retry policy) follows the definition `put_action` gives; calls before it used the old one."""
    from actionrt.definition import parse_action

    respx.put(f"{API}/v3/contacts/c-1").mock(return_value=httpx.Response(200, json={"v": 1}))
    patched = respx.post(f"{API}/v4/people").mock(return_value=httpx.Response(500, json={"v": 2}))
    write(tmp_path)
    async with make_runtime(tmp_path) as runtime:
        before = await runtime.invoke("crmUpdate", PARAMS, headers={"x-request-id": "r"}, path="c-1")
        assert before.ok and before.response == {"v": 1} and before.method == "PUT"
        edited = parse_action(
            {
                "name": "crmUpdate",
                "endpoint": {
                    "url": API + "/v4/people",
                    "method": "POST",
                    "headers": [{"name": "x-api-version", "value": "3"}],
                },
                "request": {
                    "sample": {"stage": "lead", "owner": {"team": "emea"}, "vip": False},
                    "variables": {"stage": {"label": "Stage"}, "vip": {"label": "VIP"}},
                },
                "retry": {"count": 1},
                "timeout": 7,
            },
            source="crmUpdate.json",
            plugins=runtime.plugins,
        )
        runtime.put_action(edited)
        after = await runtime.invoke("crmUpdate", {"stage": "customer", "vip": "true"})
        stale = await runtime.invoke("crmUpdate", PARAMS)
    assert after.status == "http_500" and after.attempts == 2  # the new retry count
    assert after.endpoint == API + "/v4/people" and after.method == "POST"
    sent = patched.calls.last.request
    assert json.loads(sent.content) == {"stage": "customer", "owner": {"team": "emea"}, "vip": True}
    assert sent.headers["x-api-version"] == "3" and "x-request-id" not in sent.headers
    assert stale.error_code == "input" and "score" in (stale.error or "")
