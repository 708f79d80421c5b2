"""Metrics, call log lines and call details of real calls to a loopback partner."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from auth_server import TokenServer, token_server
from observability_support import (
    FAST_BACKOFF,
    SENTINEL,
    Partner,
    partner,
    standard_actions,
    write_action,
)
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from actionrt.observability import BODY_LIMIT, CallRecorder, JsonLogFormatter, metrics_for, render_metrics
from actionrt.results import InvocationResult
from actionrt.runtime import Runtime

__all__ = ["token_server"]  # fixture, used by parameter name


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "EPS,OBS_SENTINEL,OBS_LATER")


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered text, parsed back with prometheus_client's parser."""
    text = render_metrics(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def server() -> AsyncIterator[Partner]:
    async with partner() as running:
        yield running


def runtime(folder: Path, **options: Any) -> Runtime:
    return Runtime.from_path(folder, allow_private_network=True, backoff=FAST_BACKOFF, **options)


async def test_calls_count_exactly_by_action_and_status(server: Partner, tmp_path: Path) -> None:
    standard_actions(tmp_path, server.url)
    registry = CollectorRegistry()
    async with runtime(tmp_path, metrics=registry) as rt:
        for _ in range(3):
            await rt.invoke("ok", {"email": "a@example.com"})
        for _ in range(2):
            await rt.invoke("missing", {"email": "a@example.com"})
        flaky = await rt.invoke("flaky", {"email": "a@example.com"})
        bad = await rt.invoke("ok", {})  # the required variable is missing: nothing is sent
    assert (flaky.status, flaky.attempts, bad.status) == ("http_200", 2, "internalError")
    found = samples(registry)
    assert value(found, "actionrt_calls_total", action="ok", status="http_200") == 3
    assert value(found, "actionrt_calls_total", action="ok", status="internalError") == 1
    assert value(found, "actionrt_calls_total", action="missing", status="http_404") == 2
    assert value(found, "actionrt_calls_total", action="flaky", status="http_200") == 1
    assert value(found, "actionrt_calls_total", action="flaky", status="http_503") == 0
    assert value(found, "actionrt_attempts_total", action="ok") == 3
    assert value(found, "actionrt_attempts_total", action="flaky") == 2
    assert value(found, "actionrt_call_duration_seconds_count", action="ok") == 4
    assert value(found, "actionrt_call_duration_seconds_bucket", action="missing", le="+Inf") == 2
    # every request was answered: nothing left in flight for the partner's host
    assert found[("actionrt_in_flight_calls", (("host", "127.0.0.1"),))] == 0
    # no label carries a URL path or a customer value
    labels = {v for (_, pairs) in found for (_, v) in pairs}
    assert not any("/" in label or "@" in label for label in labels)


async def test_metrics_off_counts_nothing_and_runtimes_share_one_registry(
    server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    registry = CollectorRegistry()
    async with runtime(tmp_path, metrics=False) as off, runtime(tmp_path, metrics=registry) as one:
        await off.invoke("ok", {"email": "a@example.com"})
        # a second runtime over the same registry registers nothing twice and adds up
        async with runtime(tmp_path, metrics=registry) as two:
            await one.invoke("ok", {"email": "a@example.com"})
            await two.invoke("ok", {"email": "a@example.com"})
    assert value(samples(registry), "actionrt_calls_total", action="ok", status="http_200") == 2
    assert metrics_for(registry) is metrics_for(registry)


async def test_capped_calls_count_as_capped(server: Partner, tmp_path: Path) -> None:
    standard_actions(tmp_path, server.url)
    rule = {
        "url": f"{server.url}/ok",
        "methods": ["POST"],
        "services": {"action": {"rating": {"maxCallsCount": 2, "periodInMs": 60_000}}},
    }
    registry = CollectorRegistry()
    async with runtime(tmp_path, metrics=registry, capping=[rule]) as rt:
        statuses = [(await rt.invoke("ok", {"email": "a@example.com"})).status for _ in range(4)]
    assert statuses == ["http_200", "http_200", "capped", "capped"]
    found = samples(registry)
    assert value(found, "actionrt_capped_total", action="ok") == 2
    assert value(found, "actionrt_calls_total", action="ok", status="capped") == 2
    assert value(found, "actionrt_throttled_total", action="ok") == 0


async def test_throttled_calls_count_their_wait(tmp_path: Path) -> None:
    # The wait is what the limiter reported in the result; the watch only reads it.
    from actionrt.observability import CallWatch

    metrics = metrics_for(CollectorRegistry())
    write_action(tmp_path, "ok", "https://api.example.com/v1/ok")
    action = Runtime.from_path(tmp_path).registry.actions["ok"]
    watch = CallWatch(metrics=metrics)

    async def waited(queued: float) -> InvocationResult:
        return _result("ok", "http_200", queued=queued)

    watched = watch.action(action)
    for queued in (0.0, 0.25, 2.0):
        await watch.call(watched, waited(queued))
    found = samples(metrics.registry)
    assert value(found, "actionrt_throttled_total", action="ok") == 2
    assert value(found, "actionrt_throttle_wait_seconds_count") == 2
    assert value(found, "actionrt_throttle_wait_seconds_sum") == 2.25
    assert value(found, "actionrt_throttle_wait_seconds_bucket", le="0.25") == 1


def test_fleet_families_take_the_workers_updates() -> None:
    metrics = metrics_for(CollectorRegistry())
    metrics.fleet.set_queue_depth("default", 12)
    metrics.fleet.claimed("default", 3)
    metrics.fleet.dead_lettered("default")
    found = samples(metrics.registry)
    assert value(found, "actionrt_queue_depth", queue="default") == 12
    assert value(found, "actionrt_queue_claims_total", queue="default") == 3
    assert value(found, "actionrt_dead_letters_total", queue="default") == 1


async def test_token_requests_count_by_scheme_and_outcome(
    token_server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPS", "my-client-secret")
    registry = CollectorRegistry()
    tokens = token_server
    write_action(
        tmp_path,
        "withToken",
        f"{tokens.base_url}/resource",
        auth={
            "type": "customAuthorization",
            "endpoint": f"{tokens.base_url}/oauth2/token",
            "method": "POST",
            "headers": {"Authorization": "Basic EncodeBase64(my-client-id:{{ secrets.EPS }})"},
            "body": {
                "bodyType": "form",
                "bodyParams": {"grant_type": "password", "username": "user", "password": "pass"},
            },
            "tokenInResponse": "json://access_token",
            "cacheDuration": {"expiryInResponse": "json://expires_in", "timeUnit": "seconds"},
        },
    )
    async with runtime(tmp_path, metrics=registry) as rt:
        for _ in range(3):
            assert (await rt.invoke("withToken", {"email": "a@example.com"})).ok
    tokens.fail_status = 503
    async with runtime(tmp_path, metrics=registry) as rt:
        failed = await rt.invoke("withToken", {"email": "a@example.com"})
    assert failed.status == "internalError"
    found = samples(registry)
    assert value(found, "actionrt_token_requests_total", scheme="customAuthorization", outcome="ok") == 1
    # one refresh asks three times (a 503 is transient): each request counts
    assert value(found, "actionrt_token_requests_total", scheme="customAuthorization", outcome="error") == 3


# -- call log lines ----------------------------------------------------------------------------


async def test_one_info_line_per_call_with_its_fields(
    server: Partner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standard_actions(tmp_path, server.url)
    caplog.set_level(logging.INFO, logger="actionrt.calls")
    async with runtime(tmp_path, metrics=False) as rt:
        await rt.invoke("flaky", {"email": "customer-ada@example.com"})
        await rt.invoke("missing", {"email": "customer-ada@example.com"})
    records = [r for r in caplog.records if r.name == "actionrt.calls"]
    assert [(r.levelno, r.action, r.status, r.attempts) for r in records] == [  # type: ignore[attr-defined]
        (logging.INFO, "flaky", "http_200", 2),
        (logging.INFO, "missing", "http_404", 1),
    ]
    lines = [json.loads(JsonLogFormatter().format(r)) for r in records]
    first = lines[0]
    assert first["logger"] == "actionrt.calls" and first["level"] == "INFO"
    assert first["durationMs"] > 0 and len(first["callId"]) == 16 and first["traceId"] is None
    assert lines[0]["callId"] != lines[1]["callId"]
    assert lines[1]["errorCode"] == "404"
    assert "customer-ada" not in json.dumps(lines)  # no payload value


async def test_no_line_when_the_logger_is_quiet(
    server: Partner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standard_actions(tmp_path, server.url)
    caplog.set_level(logging.WARNING, logger="actionrt.calls")
    async with runtime(tmp_path, metrics=False) as rt:
        await rt.invoke("ok", {"email": "a@example.com"})
    assert not [r for r in caplog.records if r.name == "actionrt.calls"]


def test_json_formatter_writes_extras_and_exceptions() -> None:
    logger = logging.getLogger("test.observability.json")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            __import__("sys").exc_info(),
            extra={"callId": "c1"},
        )
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "failed x" and line["callId"] == "c1" and line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"] and line["time"].endswith("+00:00")


# -- call details --------------------------------------------------------------------------------


async def test_details_show_each_attempt_and_why_it_was_retried(server: Partner, tmp_path: Path) -> None:
    standard_actions(tmp_path, server.url)
    recorder = CallRecorder()
    async with runtime(tmp_path, metrics=False, recorder=recorder) as rt:
        await rt.invoke("flaky", {"email": "customer-ada@example.com"})
    (details,) = recorder.recent("flaky")
    shown = details.as_json()
    assert shown["status"] == "http_200" and shown["attempts"] == 2 and shown["bodiesRecorded"] is False
    first, second = shown["requests"]
    assert first["retriedBecause"] == "the endpoint answered 503" and second["retriedBecause"] is None
    assert first["response"]["status"] == 503 and second["response"]["status"] == 200
    assert first["request"]["method"] == "POST" and first["request"]["url"] == f"{server.url}/flaky"
    assert first["request"]["headers"]["Content-Type"].startswith("application/json")
    assert first["duration"] > 0 and second["startedAfter"] >= first["startedAfter"]
    # metadata only by default: no body either way
    assert first["request"]["body"] is None and second["response"]["body"] is None
    assert "customer-ada" not in json.dumps(shown)
    assert recorder.get("flaky", details.call_id) is details
    assert recorder.get("flaky", "nope") is None


async def test_bodies_are_kept_when_recording_them_and_cut_at_the_limit(
    server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    recorder = CallRecorder(record_bodies=True)
    async with runtime(tmp_path, metrics=False, recorder=recorder) as rt:
        await rt.invoke("big", {"email": "customer-ada@example.com"})
    (attempt,) = recorder.recent("big")[0].as_json()["requests"]
    assert json.loads(attempt["request"]["body"]) == {"email": "customer-ada@example.com"}
    body = attempt["response"]["body"]
    assert len(body) == BODY_LIMIT and attempt["response"]["bodyCut"] is True
    assert body.startswith('{"blob": "xxx')


async def test_a_network_failure_is_an_attempt_without_an_answer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    write_action(tmp_path, "down", f"http://127.0.0.1:{port}/x")
    recorder = CallRecorder(keep=2)
    async with runtime(tmp_path, metrics=False, recorder=recorder) as rt:
        for _ in range(3):
            result = await rt.invoke("down", {"email": "a@example.com"})
    # Refused connections sent nothing (attempts 0, issue 17); the details still show each try.
    assert result.status == "internalError" and result.attempts == 0 and not result.sent
    kept = recorder.recent("down")
    assert len(kept) == 2  # only the last `keep` calls
    requests = kept[0].as_json()["requests"]
    assert [r["error"] for r in requests] == ["connect"] * 4
    assert requests[0]["retriedBecause"] == "no answer (connect)" and requests[0]["response"] is None


# -- the sentinel secret --------------------------------------------------------------------------


async def test_a_secret_never_reaches_metrics_logs_or_details(
    server: Partner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OBS_SENTINEL", SENTINEL)
    secret = "{{ secrets.OBS_SENTINEL }}"
    write_action(
        tmp_path, "inHeader", f"{server.url}/ok", auth={"type": "apiKey", "name": "x-key", "value": secret}
    )
    write_action(
        tmp_path,
        "inQuery",
        f"{server.url}/ok",
        auth={"type": "apiKey", "name": "appid", "value": secret, "location": "query"},
        query=[{"name": "locale", "value": "fr"}, {"name": "ref", "variable": True, "label": "Ref"}],
    )
    write_action(
        tmp_path,
        "inConstant",
        f"{server.url}/missing",
        auth={"type": "basic", "username": "ada", "password": secret},
        headers=[{"name": "x-partner", "value": secret}, {"name": "x-version", "value": "2"}],
        dynamic=True,
    )
    caplog.set_level(logging.INFO, logger="actionrt")
    registry = CollectorRegistry()
    recorder = CallRecorder(record_bodies=True)
    async with runtime(tmp_path, metrics=registry, recorder=recorder) as rt:
        await rt.invoke("inHeader", {"email": "a@example.com"})
        await rt.invoke("inQuery", {"email": "a@example.com"}, query={"ref": "r-7"})
        await rt.invoke("inConstant", {"email": "a@example.com"}, path="users/ada")
    assert len(server.seen) == 3 and SENTINEL in server.seen[1]["query"]["appid"]  # it was sent
    kept = [recorder.recent(name)[0] for name in ("inHeader", "inQuery", "inConstant")]
    details = [d.as_json() for d in kept]
    # The kept details hold each attempt as it was seen (masked when read): nothing public
    # may show it unmasked, nor may a repr.
    public = [repr(getattr(d, name)) for d in kept for name in dir(d) if not name.startswith("_")]
    public += [repr(d) for d in kept] + [repr(a) for d in kept for a in d.requests]
    everything = (
        render_metrics(registry).decode()
        + "\n".join(JsonLogFormatter().format(r) for r in caplog.records)
        + json.dumps(details)
        + "\n".join(public)
    )
    assert SENTINEL not in everything
    header, query, constant = (d["requests"][0]["request"] for d in details)
    assert header["headers"]["x-key"] == "***"
    assert query["url"] == f"{server.url}/ok?locale=fr&ref=r-7&appid=***"
    assert constant["headers"]["Authorization"] == "***" and constant["headers"]["x-partner"] == "***"
    assert constant["headers"]["x-version"] == "2"
    assert constant["url"] == f"{server.url}/missing/users/ada"  # dynamic path: shown with bodies on
    assert details[0]["requests"][0]["response"]["headers"]["set-cookie"] == "***"


def _result(action: str, status: str, *, queued: float = 0.0) -> InvocationResult:
    return InvocationResult(
        action, status, True, 200, None, None, 1, None, None, None, None, None, 0.01, queued, "", "POST"
    )


async def test_counts_outlive_a_dropped_runtime(server: Partner, tmp_path: Path) -> None:
    import gc

    standard_actions(tmp_path, server.url)
    registry = CollectorRegistry()
    for _ in range(3):  # as the service does for each test request: a runtime per call
        async with runtime(tmp_path, metrics=registry) as rt:
            await rt.invoke("ok", {"email": "a@example.com"})
        del rt
        gc.collect()
    collector = metrics_for(registry).calls
    assert len(collector._live) == 0 and len(collector._retired) == 4  # one per action, not per runtime
    found = samples(registry)
    assert value(found, "actionrt_calls_total", action="ok", status="http_200") == 3
    assert value(found, "actionrt_call_duration_seconds_count", action="ok") == 3


async def test_in_flight_counts_a_call_until_it_ends_or_is_cancelled(tmp_path: Path) -> None:
    import asyncio

    from aiohttp import web

    arrived = asyncio.Event()
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/held", held)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    write_action(tmp_path, "held", f"http://127.0.0.1:{port}/held")
    registry = CollectorRegistry()

    def in_flight() -> float:
        return samples(registry)[("actionrt_in_flight_calls", (("host", "127.0.0.1"),))]

    try:
        async with runtime(tmp_path, metrics=registry) as rt:
            call = asyncio.create_task(rt.invoke("held", {"email": "a@example.com"}))
            await arrived.wait()
            assert in_flight() == 1
            release.set()
            assert (await call).ok and in_flight() == 0
            arrived.clear()
            release.clear()
            cancelled = asyncio.create_task(rt.invoke("held", {"email": "a@example.com"}))
            await arrived.wait()
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert in_flight() == 0
            release.set()
    finally:
        await runner.cleanup()
    assert value(samples(registry), "actionrt_calls_total", action="held", status="http_200") == 1


async def test_calls_of_an_action_awaiting_its_secret_count_too(
    server: Partner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OBS_LATER", raising=False)
    auth = {"type": "apiKey", "name": "x-key", "value": "{{ secrets.OBS_LATER }}"}
    write_action(tmp_path, "later", f"{server.url}/ok", auth=auth)
    registry = CollectorRegistry()
    async with runtime(tmp_path, metrics=registry) as rt:
        waiting = await rt.invoke("later", {"email": "a@example.com"})
        monkeypatch.setenv("OBS_LATER", "k-1")
        ready = await rt.invoke("later", {"email": "a@example.com"})
    assert (waiting.status, ready.status) == ("internalError", "http_200")
    found = samples(registry)
    assert value(found, "actionrt_calls_total", action="later", status="internalError") == 1
    assert value(found, "actionrt_calls_total", action="later", status="http_200") == 1


def test_details_mask_what_a_url_may_carry(tmp_path: Path) -> None:
    from actionrt.observability.details import Masking

    write_action(
        tmp_path,
        "shop",
        "https://api.example.com/v1/orders",
        query=[{"name": "locale", "value": "fr"}, {"name": "email", "variable": True, "label": "Email"}],
        dynamic=True,
    )
    action = Runtime.from_path(tmp_path).registry.actions["shop"]
    metadata, bodies = Masking(action, record_bodies=False), Masking(action, record_bodies=True)
    sent = "https://api.example.com/v1/orders/ada-42?locale=fr&email=ada%40example.com&sig=abc"
    assert metadata.url(sent) == "https://api.example.com/v1/orders/***?locale=fr&email=***&sig=***"
    assert (
        bodies.url(sent)
        == "https://api.example.com/v1/orders/ada-42?locale=fr&email=ada%40example.com&sig=***"
    )
    assert metadata.url("https://api.example.com/v1/orders") == "https://api.example.com/v1/orders"


def test_details_mask_each_header_name_alike_on_every_call(tmp_path: Path) -> None:
    from actionrt.observability.details import Masking

    write_action(
        tmp_path,
        "shop",
        "https://api.example.com/v1/orders",
        headers=[
            {"name": "X-Version", "value": "2"},
            {"name": "x-email", "variable": True, "label": "Email"},
        ],
    )
    action = Runtime.from_path(tmp_path).registry.actions["shop"]
    metadata, bodies = Masking(action, record_bodies=False), Masking(action, record_bodies=True)
    sent = {
        "x-version": "2",
        "X-Email": "ada@example.com",
        "Authorization": "Bearer t",
        "Content-Type": "a/b",
    }
    for _ in range(2):  # the second time from the names' kept verdicts
        assert metadata.request_headers(sent) == {
            "x-version": "2",
            "X-Email": "***",
            "Authorization": "***",
            "Content-Type": "a/b",
        }
        assert bodies.request_headers(sent)["X-Email"] == "ada@example.com"
    # A partner answering with ever new names: each masked, those seen before as before.
    for n in range(300):
        answer = {"Server": "nginx", f"x-trace-{n}": "t", "Set-Cookie": "s=1"}
        assert metadata.response_headers(answer) == {
            "Server": "nginx",
            f"x-trace-{n}": "***",
            "Set-Cookie": "***",
        }
