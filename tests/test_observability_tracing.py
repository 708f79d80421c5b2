"""Spans of real calls, read with the OpenTelemetry SDK's in-memory exporter, and the W3C
`traceparent` the loopback partner receives."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from auth_server import TokenServer, token_server
from observability_support import FAST_BACKOFF, SENTINEL, Partner, partner, standard_actions, write_action
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from actionrt.observability import CallRecorder, CallWatch, JsonLogFormatter
from actionrt.observability.tracing import active_tracer
from actionrt.results import InvocationResult
from actionrt.runtime import Runtime

__all__ = ["token_server"]  # fixture, used by parameter name


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "EPS,OBS_SENTINEL")


def _reset_global_provider() -> None:
    # OpenTelemetry sets its global provider once per process; tests put it back (as
    # opentelemetry-test-utils' reset_trace_globals does) so no other test runs traced.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _reset_global_provider()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        _reset_global_provider()
        provider.shutdown()


@pytest.fixture
async def server() -> AsyncIterator[Partner]:
    async with partner() as running:
        yield running


def runtime(folder: Path, **options: object) -> Runtime:
    return Runtime.from_path(
        folder,
        allow_private_network=True,
        backoff=FAST_BACKOFF,
        metrics=False,
        **options,  # type: ignore[arg-type]
    )


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


async def test_a_call_is_a_span_with_one_client_child_per_attempt(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    async with runtime(tmp_path) as rt:
        result = await rt.invoke("flaky", {"email": "a@example.com"})
    assert (result.status, result.attempts) == ("http_200", 2)
    found = by_name(spans)
    (call,) = found["actionrt.invoke"]
    assert call.attributes == {
        "actionrt.action": "flaky",
        "actionrt.status": "http_200",
        "actionrt.attempts": 2,
    }
    assert call.status.status_code is StatusCode.UNSET
    first, second = sorted(found["POST"], key=lambda span: span.start_time or 0)
    for attempt in (first, second):
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
        assert attempt.context.trace_id == call.context.trace_id
        assert attempt.attributes is not None
        assert attempt.attributes["http.request.method"] == "POST"
        assert attempt.attributes["server.address"] == "127.0.0.1"
        assert attempt.attributes["server.port"] == server.port
        assert attempt.attributes["url.full"] == f"{server.url}/flaky"
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503 and first.attributes["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["http.request.resend_count"] == 1


async def test_each_attempt_sends_its_own_traceparent(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    async with runtime(tmp_path) as rt:
        await rt.invoke("flaky", {"email": "a@example.com"})
    attempts = sorted(by_name(spans)["POST"], key=lambda span: span.start_time or 0)
    received = [seen["headers"]["traceparent"].split("-") for seen in server.seen]
    assert [parts[1:3] for parts in received] == [
        [f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"] for span in attempts
    ]
    assert all(parts[0] == "00" and int(parts[3], 16) & 1 for parts in received)  # sampled
    assert "baggage" not in {name.lower() for seen in server.seen for name in seen["headers"]}


async def test_each_attempts_details_show_the_traceparent_it_sent(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path
) -> None:
    # Every attempt of a call injects its traceparent into the same headers mapping: the first
    # attempt's details must keep what it sent, not the second one's.
    standard_actions(tmp_path, server.url)
    recorder = CallRecorder()
    async with runtime(tmp_path, recorder=recorder) as rt:
        await rt.invoke("flaky", {"email": "a@example.com"})
    shown = [
        r["request"]["headers"]["traceparent"] for r in recorder.recent("flaky")[0].as_json()["requests"]
    ]
    sent = [seen["headers"]["traceparent"] for seen in server.seen]
    assert shown == sent and len(set(sent)) == 2


async def test_propagation_can_be_turned_off(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    async with runtime(tmp_path, trace_propagation=False) as rt:
        await rt.invoke("ok", {"email": "a@example.com"})
    assert "traceparent" not in server.seen[0]["headers"]
    assert set(by_name(spans)) == {"actionrt.invoke", "POST"}  # still traced


async def test_a_caller_span_is_the_parent_and_failures_are_errors(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path
) -> None:
    standard_actions(tmp_path, server.url)
    tracer = trace.get_tracer("journey-engine")
    async with runtime(tmp_path) as rt:
        with tracer.start_as_current_span("journey.node") as node:
            result = await rt.invoke("missing", {"email": "a@example.com"})
    assert result.status == "http_404"
    (call,) = by_name(spans)["actionrt.invoke"]
    assert call.parent is not None and call.parent.span_id == node.get_span_context().span_id
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes is not None and call.attributes["error.type"] == "404"


async def test_log_lines_and_details_carry_the_trace_id(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standard_actions(tmp_path, server.url)
    caplog.set_level(logging.INFO, logger="actionrt.calls")
    recorder = CallRecorder()
    async with runtime(tmp_path, recorder=recorder) as rt:
        await rt.invoke("ok", {"email": "a@example.com"})
    (call,) = by_name(spans)["actionrt.invoke"]
    expected = f"{call.context.trace_id:032x}"
    (record,) = [r for r in caplog.records if r.name == "actionrt.calls"]
    assert json.loads(JsonLogFormatter().format(record))["traceId"] == expected
    assert recorder.recent("ok")[0].trace_id == expected


async def test_token_requests_and_throttle_waits_are_spans(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    write_action(tmp_path, "ok", "https://api.example.com/v1/ok")
    action = Runtime.from_path(tmp_path).registry.actions["ok"]
    watch = CallWatch(metrics=None)

    async def fetch() -> str:
        return "token"

    async def call() -> InvocationResult:
        assert await watch.token_request("oauth2ClientCredentials", fetch()) == "token"
        return InvocationResult(
            "ok", "http_200", True, 200, None, None, 1, None, None, None, None, None, 0.5, 0.25, "", "POST"
        )

    await watch.call(watch.action(action), call())
    found = by_name(spans)
    (invoke,) = found["actionrt.invoke"]
    (token,) = found["actionrt.token"]
    (throttle,) = found["actionrt.throttle"]
    assert token.attributes == {"actionrt.auth.scheme": "oauth2ClientCredentials"}
    for child in (token, throttle):
        assert child.parent is not None and child.parent.span_id == invoke.context.span_id
    assert throttle.end_time is not None and throttle.start_time is not None
    assert throttle.end_time - throttle.start_time == 250_000_000


async def test_a_secret_never_reaches_a_span(
    spans: InMemorySpanExporter, server: Partner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBS_SENTINEL", SENTINEL)
    write_action(
        tmp_path,
        "inQuery",
        f"{server.url}/ok",
        auth={"type": "apiKey", "name": "appid", "value": "{{ secrets.OBS_SENTINEL }}", "location": "query"},
    )
    async with runtime(tmp_path) as rt:
        await rt.invoke("inQuery", {"email": "a@example.com"})
    assert SENTINEL in server.seen[0]["query"]["appid"]
    exported = [
        (span.name, dict(span.attributes or {}), span.status.description)
        for span in spans.get_finished_spans()
    ]
    assert len(exported) == 2 and SENTINEL not in json.dumps(exported, default=str)


async def test_without_an_sdk_nothing_is_traced_or_sent(server: Partner, tmp_path: Path) -> None:
    assert active_tracer() is None
    standard_actions(tmp_path, server.url)
    async with runtime(tmp_path) as rt:
        await rt.invoke("ok", {"email": "a@example.com"})
    assert "traceparent" not in server.seen[0]["headers"]


async def test_a_token_request_is_a_span_of_the_call_that_needed_it(
    spans: InMemorySpanExporter, token_server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPS", "my-client-secret")
    write_action(
        tmp_path,
        "withToken",
        f"{token_server.base_url}/resource",
        auth={
            "type": "customAuthorization",
            "endpoint": f"{token_server.base_url}/oauth2/token",
            "method": "POST",
            "headers": {"Authorization": "Basic EncodeBase64(my-client-id:{{ secrets.EPS }})"},
            "body": {
                "bodyType": "form",
                "bodyParams": {"grant_type": "password", "username": "user", "password": "pass"},
            },
            "tokenInResponse": "json://access_token",
        },
    )
    async with runtime(tmp_path) as rt:
        assert (await rt.invoke("withToken", {"email": "a@example.com"})).ok
        assert (await rt.invoke("withToken", {"email": "a@example.com"})).ok  # the cached token
    found = by_name(spans)
    first, _second = sorted(found["actionrt.invoke"], key=lambda span: span.start_time or 0)
    (token,) = found["actionrt.token"]  # one request for the two calls
    assert token.attributes == {"actionrt.auth.scheme": "customAuthorization"}
    assert token.parent is not None and token.parent.span_id == first.context.span_id
    exported = json.dumps([dict(s.attributes or {}) for s in spans.get_finished_spans()])
    assert "my-client-secret" not in exported and "pw-1" not in exported
