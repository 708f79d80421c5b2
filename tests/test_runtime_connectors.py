"""The engine calls a connector's `shape_request` and `classify_response` on every call, through
`Runtime.invoke`: the real Slack, Facebook and Firebase connectors with respx, and an inline
connector for the edges (a shaper's bad input, Retry-After on a classified failure, 401 refresh)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import actionrt_facebook
import actionrt_firebase
import actionrt_slack
import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import actionrt.runtime
from actionrt import hookimpl
from actionrt.connectors import CallPathHooks, ConnectorSettings, TemplateConnector, Verdict
from actionrt.http import HttpRequest, HttpResponse
from actionrt.testing import RuntimeFactory, assert_request_sent

POST_MESSAGE = "https://slack.com/api/chat.postMessage"
NOTIFY = {
    "name": "notifySales",
    "connector": "slack.postMessage",
    "settings": {"token": "{{ secrets.SLACK_BOT_TOKEN }}", "channel": "C1H9RESGL"},
}
SLACK_SECRETS = {"SLACK_BOT_TOKEN": "xoxb-test-token"}


def slack_answer(ok: bool, error: str | None = None, **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"ok": ok}
    if error is not None:
        body["error"] = error
    return httpx.Response(200, json=body, headers=headers)


# -- Slack: HTTP 200 with ok: false is a failure -------------------------------------------------


async def test_slack_ok_false_channel_not_found_is_a_final_failure_despite_http_200(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(POST_MESSAGE).mock(return_value=slack_answer(False, "channel_not_found"))
    runtime = actionrt_runtime_factory(NOTIFY, plugins=[actionrt_slack], secrets=SLACK_SECRETS)

    async with runtime:
        result = await runtime.invoke("notifySales", params={"text": "Hello"})

    assert route.call_count == 1  # not retried
    assert (result.status, result.ok, result.http_status) == ("http_200", False, 200)
    assert (result.error_class, result.error_code) == ("http", "slack:channel_not_found")
    assert result.error_response == {"ok": False, "error": "channel_not_found"}
    assert result.response is None
    assert result.error == (
        "the endpoint answered 200 with a failure, as the slack.postMessage connector reads it: "
        "slack:channel_not_found"
    )
    assert result.as_journey_fields()["jo_status_code"] == "http_200"
    assert result.as_event()["ok"] is False


async def test_slack_ratelimited_is_retried_until_it_posts(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(POST_MESSAGE).mock(
        side_effect=[
            slack_answer(False, "ratelimited"),
            slack_answer(False, "service_unavailable"),
            httpx.Response(200, json={"ok": True, "channel": "C1H9RESGL", "ts": "1.2"}),
        ]
    )
    runtime = actionrt_runtime_factory(NOTIFY, plugins=[actionrt_slack], secrets=SLACK_SECRETS)

    async with runtime:
        result = await runtime.invoke("notifySales", params={"text": "Hello"})

    assert route.call_count == 3
    assert (result.status, result.ok, result.attempts) == ("http_200", True, 3)
    assert result.response == {"ok": True, "channel": "C1H9RESGL", "ts": "1.2"}
    assert result.error_response is None
    # The first failure is kept for reports: an HTTP 200 that was not a success, and Slack's code.
    assert (result.origin_error_class, result.origin_error_code) == ("http", "slack:ratelimited")


async def test_slack_internal_error_is_not_retried_as_the_message_may_have_posted(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    # chat.postMessage: "It's possible some aspect of the operation succeeded before the error
    # was raised" (https://api.slack.com/methods/chat.postMessage#errors).
    route = actionrt_respx.post(POST_MESSAGE).mock(return_value=slack_answer(False, "internal_error"))
    runtime = actionrt_runtime_factory(NOTIFY, plugins=[actionrt_slack], secrets=SLACK_SECRETS)

    async with runtime:
        result = await runtime.invoke("notifySales", params={"text": "Hello"})

    assert (route.call_count, result.ok, result.error_code) == (1, False, "slack:internal_error")
    assert result.retry_after is None


async def test_slack_ratelimited_every_time_ends_a_failure_after_the_retries(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(POST_MESSAGE).mock(return_value=slack_answer(False, "ratelimited"))
    runtime = actionrt_runtime_factory(
        {**NOTIFY, "retry": {"count": 2}}, plugins=[actionrt_slack], secrets=SLACK_SECRETS
    )

    async with runtime:
        result = await runtime.invoke("notifySales", params={"text": "Hello"})

    assert route.call_count == 3
    assert (result.status, result.ok, result.attempts) == ("http_200", False, 3)
    assert result.error_response == {"ok": False, "error": "ratelimited"}


async def test_a_slack_429_is_left_to_the_default_policy_and_its_retry_after(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(POST_MESSAGE).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    runtime = actionrt_runtime_factory(NOTIFY, plugins=[actionrt_slack], secrets=SLACK_SECRETS)

    async with runtime:
        result = await runtime.invoke("notifySales", params={"text": "Hello"})

    assert (route.call_count, result.ok) == (2, True)
    assert (result.origin_error_class, result.origin_error_code) == ("http", "429")


# -- Facebook: the body is shaped (hashed) before it is sent; Graph errors decide the retry -------

EVENTS_URL = "https://graph.facebook.com/v21.0/1234567890/events"
PURCHASE = {
    "name": "purchase",
    "connector": "facebook.conversions",
    "settings": {"pixelId": "1234567890", "accessToken": "{{ secrets.FB_TOKEN }}"},
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(**user: Any) -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": 1762902353,
        "action_source": "website",
        "event_id": "order-1001",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": " Person@Example.com",
            "ph": "+44 844 412 4653",
            "external_id": "Customer-42",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            **user,
        },
        "custom_data": {"currency": "EUR", "value": 129.9},
    }


async def test_facebook_conversions_sends_customer_information_sha256_hashed(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(EVENTS_URL).respond(200, json={"events_received": 1, "fbtrace_id": "Ab1"})
    runtime = actionrt_runtime_factory(PURCHASE, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAt"})

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event()]})

    assert result.ok and result.response == {"events_received": 1, "fbtrace_id": "Ab1"}
    sent = assert_request_sent(actionrt_respx, method="POST", url=EVENTS_URL, params={"access_token": "EAAt"})
    (shaped,) = json.loads(sent.content)["data"]
    user = shaped["user_data"]
    assert user["em"] == sha256("person@example.com")
    assert user["ph"] == sha256("448444124653")
    assert user["external_id"] == sha256("Customer-42")  # ids are case-sensitive: not lower-cased
    # Not customer information: sent as given.
    assert user["client_ip_address"] == "203.0.113.7"
    assert shaped["event_id"] == "order-1001"
    assert int(sent.headers["content-length"]) == len(sent.content)


async def test_a_shaper_refusing_the_input_is_an_internal_error_and_nothing_is_sent(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(EVENTS_URL).respond(200, json={})
    runtime = actionrt_runtime_factory(PURCHASE, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAt"})

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event()] * 1001})

    assert not route.called
    assert (result.status, result.error_class, result.error_code) == ("internalError", "error", "input")
    assert result.attempts == 0
    assert result.error == "data: 1001 events; the Conversions API takes at most 1000"


def graph_error(code: int, status: int = 400) -> httpx.Response:
    body = {"error": {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "A"}}
    return httpx.Response(status, json=body)


async def test_a_graph_rate_limit_is_not_hammered_but_handed_back_with_its_wait(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    # Graph's code 4 (application rate limit) lasts "until enough time has passed" in a rolling
    # hour: one attempt, then the result says when to try again (the usage header: 19 minutes).
    usage = {
        "1234567890": [{"type": "ads_insights", "call_count": 100, "estimated_time_to_regain_access": 19}]
    }
    answer = graph_error(4)
    answer.headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
    route = actionrt_respx.post(EVENTS_URL).mock(return_value=answer)
    runtime = actionrt_runtime_factory(PURCHASE, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAt"})

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event()]})

    assert (route.call_count, result.ok, result.attempts) == (1, False, 1)
    assert (result.status, result.error_code, result.retry_after) == ("http_400", "graph:4", 19 * 60)
    assert result.provider_message == "m"
    assert result.as_journey_fields()["retryAfter"] == 19 * 60
    assert result.as_event()["errorCode"] == "graph:4"


async def test_a_transient_graph_error_is_retried_at_once(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    # The default policy never retries a 400; Graph's code 2 (service unavailable) says to.
    route = actionrt_respx.post(EVENTS_URL).mock(
        side_effect=[graph_error(2), httpx.Response(200, json={"events_received": 1})]
    )
    runtime = actionrt_runtime_factory(PURCHASE, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAt"})

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event()]})

    assert (route.call_count, result.ok, result.attempts) == (2, True, 2)
    assert (result.origin_error_class, result.origin_error_code) == ("http", "graph:2")


async def test_a_final_graph_error_is_not_retried_even_under_the_reference_policy(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    # `policy: reference` retries every 400; Graph's code 100 (invalid parameter) is final.
    route = actionrt_respx.post(EVENTS_URL).mock(return_value=graph_error(100))
    runtime = actionrt_runtime_factory(
        {**PURCHASE, "retry": {"count": 3, "policy": "reference"}},
        plugins=[actionrt_facebook],
        secrets={"FB_TOKEN": "EAAt"},
    )

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event()]})

    assert route.call_count == 1
    assert (result.status, result.ok, result.error_class, result.error_code) == (
        "http_400",
        False,
        "http",
        "graph:100",
    )
    assert result.error == "the endpoint answered 400: graph:100"
    assert result.error_response["error"]["code"] == 100
    assert result.retry_after is None


# -- Firebase: FCM's error codes decide the retry ------------------------------------------------

TOKEN_URI = "https://oauth2.googleapis.com/token"
SEND_URL = "https://fcm.googleapis.com/v1/projects/my-shop-app/messages:send"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def fcm_sent() -> httpx.Response:
    return httpx.Response(200, json={"name": "projects/my-shop-app/messages/0:1"})


@pytest.fixture(scope="module")
def service_account() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "my-shop-app",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": "push@my-shop-app.iam.gserviceaccount.com",
            "token_uri": TOKEN_URI,
        }
    )


def fcm_error(status: int, state: str, code: str | None = None) -> httpx.Response:
    error: dict[str, Any] = {"code": status, "message": "m", "status": state}
    if code is not None:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": code}]
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("answers", "sent", "status", "ok", "code", "retry_after"),
    [
        # UNREGISTERED: the device token is gone; never retried.
        ([fcm_error(404, "NOT_FOUND", "UNREGISTERED")], 1, "http_404", False, "fcm:UNREGISTERED", None),
        # INVALID_ARGUMENT is final even where the reference policy would retry a 400.
        (
            [fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")],
            1,
            "http_400",
            False,
            "fcm:INVALID_ARGUMENT",
            None,
        ),
        # UNAVAILABLE is retried at once.
        ([fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), fcm_sent()], 2, "http_200", True, None, None),
        # QUOTA_EXCEEDED: "a minimum initial delay of 1 minute", past any call's deadline: handed back.
        (
            [fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), fcm_sent()],
            1,
            "http_429",
            False,
            "fcm:QUOTA_EXCEEDED",
            60,
        ),
    ],
)
async def test_fcm_error_codes_decide_the_retry(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    service_account: str,
    answers: list[httpx.Response],
    sent: int,
    status: str,
    ok: bool,
    code: str | None,
    retry_after: float | None,
) -> None:
    actionrt_respx.post(TOKEN_URI).respond(200, json={"access_token": "ya29.t", "expires_in": 3599})
    route = actionrt_respx.post(SEND_URL).mock(side_effect=answers)
    runtime = actionrt_runtime_factory(
        {
            "name": "orderShipped",
            "connector": "firebase.fcm",
            "settings": {"projectId": "my-shop-app", "serviceAccount": "{{ secrets.FCM_KEY }}"},
            "retry": {"count": 3, "policy": "reference"},
        },
        plugins=[actionrt_firebase],
        secrets={"FCM_KEY": service_account},
    )
    params = {
        "message.token": "device-1",
        "message.notification.title": "Shipped",
        "message.notification.body": "On its way",
    }

    async with runtime:
        result = await runtime.invoke("orderShipped", params=params)

    assert (route.call_count, result.status, result.ok) == (sent, status, ok)
    assert (result.error_code, result.retry_after) == (code, retry_after)
    assert_request_sent(actionrt_respx, url=SEND_URL, headers={"Authorization": "Bearer ya29.t"})


# -- an inline connector for the engine's edges --------------------------------------------------


class EchoSettings(ConnectorSettings):
    pass


class Echo(TemplateConnector):
    """`test.echo`: the test decides what `shape_request` does and what `classify_response` says."""

    name = "test.echo"
    settings_model = EchoSettings

    def __init__(
        self,
        shape: Callable[[HttpRequest, Mapping[str, Any]], None] | None = None,
        classify: Callable[[HttpResponse], Verdict | bool | None] = lambda response: None,
    ) -> None:
        self._shape = shape
        self._classify = classify
        self.classified: list[int] = []

    def template(self, settings: EchoSettings) -> dict[str, Any]:
        return {
            "endpoint": {"url": "https://api.example.com/echo", "method": "POST"},
            "request": {"sample": {"text": "hi"}, "variables": {"text": {"label": "Text"}}},
            "timeout": 5,
        }

    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
        if self._shape is not None:
            self._shape(request, params)

    def classify_response(self, response: HttpResponse) -> Verdict | bool | None:
        self.classified.append(response.status)
        return self._classify(response)


class EchoPlugin:
    def __init__(self, connector: Echo) -> None:
        self.connector = connector

    @hookimpl
    def register_connectors(self, register: Callable[[Any], None]) -> None:
        register(self.connector)


ECHO = {"name": "echo", "connector": "test.echo"}


async def test_the_shaper_sees_the_params_and_its_headers_and_body_are_sent(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    seen: list[dict[str, Any]] = []

    def sign(request: HttpRequest, params: Mapping[str, Any]) -> None:
        seen.append(dict(params))
        assert request.content is not None
        request.headers["X-Signature"] = hashlib.sha256(request.content).hexdigest()[:16]
        request.content = request.content.upper()

    actionrt_respx.post("https://api.example.com/echo").respond(200, json={})
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(Echo(shape=sign))])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "hello"})

    assert result.ok
    assert seen == [{"text": "hello"}]
    expected = hashlib.sha256(b'{"text":"hello"}').hexdigest()[:16]
    sent = assert_request_sent(actionrt_respx, headers={"X-Signature": expected})
    assert sent.content == b'{"TEXT":"HELLO"}'


async def test_a_classified_failure_honours_retry_after_and_the_deadline(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    echo = Echo(classify=lambda response: json.loads(response.content).get("busy"))
    route = actionrt_respx.post("https://api.example.com/echo").mock(
        return_value=httpx.Response(200, json={"busy": True}, headers={"Retry-After": "60"})
    )
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(echo)])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "x"})

    assert route.call_count == 1
    assert (result.status, result.ok, result.attempts) == ("http_200", False, 1)
    assert result.error == (
        "the endpoint answered 200 with a failure, as the test.echo connector reads it "
        "(Retry-After asks 60 s, past the deadline)"
    )


async def test_a_verdict_of_none_keeps_the_default_policy(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    echo = Echo()  # always None
    route = actionrt_respx.post("https://api.example.com/echo").mock(
        side_effect=[httpx.Response(503), httpx.Response(400, json={"e": 1})]
    )
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(echo)])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "x"})

    assert route.call_count == 2 and echo.classified == [503, 400]
    assert (result.status, result.ok, result.error_response) == ("http_400", False, {"e": 1})
    assert result.error == "the endpoint answered 400"


async def test_a_401_refreshes_the_token_before_the_connector_is_asked(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    # The connector calls every non-2xx final; the engine's token refresh still comes first.
    echo = Echo(classify=lambda response: False if response.status >= 300 else None)
    actionrt_respx.post("https://auth.example.com/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "t1"}),
            httpx.Response(200, json={"access_token": "t2"}),
        ]
    )
    route = actionrt_respx.post("https://api.example.com/echo").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json={"done": True})]
    )
    action = {
        **ECHO,
        "authentication": {
            "type": "customAuthorization",
            "endpoint": "https://auth.example.com/token",
            "method": "POST",
            "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
            "tokenInResponse": "json://access_token",
        },
    }
    runtime = actionrt_runtime_factory(action, plugins=[EchoPlugin(echo)])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "x"})

    assert (result.ok, result.attempts, result.response) == (True, 2, {"done": True})
    assert [call.request.headers["authorization"] for call in route.calls] == ["Bearer t1", "Bearer t2"]
    assert echo.classified == [200]


async def test_the_hooks_are_looked_up_once_per_action_not_per_call(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[object] = []
    real = actionrt.runtime.call_path_hooks

    def counting(connector: object | None) -> CallPathHooks:
        lookups.append(connector)
        return real(connector)

    monkeypatch.setattr(actionrt.runtime, "call_path_hooks", counting)
    echo = Echo()
    actionrt_respx.post("https://api.example.com/echo").respond(200, json={})
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(echo)])

    async with runtime:
        for _ in range(3):
            assert (await runtime.invoke("echo", params={"text": "x"})).ok

    assert lookups == [echo]
    assert echo.classified == [200, 200, 200]


def test_an_action_without_a_connector_has_no_hooks(actionrt_runtime_factory: RuntimeFactory) -> None:
    runtime = actionrt_runtime_factory(
        {"name": "plain", "endpoint": {"url": "https://api.example.com/x", "method": "GET"}}
    )
    engine = runtime._engines["plain"]
    assert (engine.shape, engine.classify) == (None, None)


async def test_a_shaper_may_change_the_path_but_not_the_host(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    def move(request: HttpRequest, params: Mapping[str, Any]) -> None:
        request.url = str(params["text"])

    moved = actionrt_respx.post("https://api.example.com/echo/v2").respond(200, json={})
    elsewhere = actionrt_respx.post("https://attacker.example.net/echo").respond(200, json={})
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(Echo(shape=move))])

    async with runtime:
        same_host = await runtime.invoke("echo", params={"text": "https://api.example.com/echo/v2"})
        other_host = await runtime.invoke("echo", params={"text": "https://attacker.example.net/echo"})

    assert same_host.ok and moved.call_count == 1
    assert not elsewhere.called
    assert (other_host.status, other_host.error_code) == ("internalError", "destinationRefused")
    assert other_host.error == "the test.echo connector moved the request to another host"


async def test_a_classifier_that_raises_leaves_an_accepted_answer_accepted(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A broken classifier must not turn a 200 the provider took into internalError: the journey
    # would resend a message that was delivered.
    def broken(response: HttpResponse) -> bool | None:
        raise KeyError("ok")

    route = actionrt_respx.post("https://api.example.com/echo").respond(200, json={"id": "m-1"})
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(Echo(classify=broken))])

    with caplog.at_level("WARNING", logger="actionrt.connectors"):
        async with runtime:
            first = await runtime.invoke("echo", params={"text": "x"})
            second = await runtime.invoke("echo", params={"text": "y"})

    assert (first.status, first.ok, first.http_status, first.response) == (
        "http_200",
        True,
        200,
        {"id": "m-1"},
    )
    assert second.ok and route.call_count == 2
    assert [r.getMessage() for r in caplog.records if "classify_response failed" in r.getMessage()] == [
        "connector test.echo: classify_response failed (KeyError: 'ok'); "
        "its answers are judged by their status alone"
    ]


async def test_a_retry_later_that_fits_the_deadline_is_waited_for_within_the_call(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    answers = iter([Verdict.retry_later(0, "echo:busy", "come back"), None])
    route = actionrt_respx.post("https://api.example.com/echo").mock(
        side_effect=[httpx.Response(503, json={}), httpx.Response(200, json={"id": "m-1"})]
    )
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(Echo(classify=lambda r: next(answers)))])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "x"})

    assert (route.call_count, result.ok, result.retry_after) == (2, True, None)
    assert (result.origin_error_class, result.origin_error_code) == ("http", "echo:busy")


async def test_a_retry_later_past_the_deadline_ends_the_call_with_the_wait(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    verdict = Verdict.retry_later(120, "echo:quota", "daily quota")
    route = actionrt_respx.post("https://api.example.com/echo").respond(429, json={"error": "quota"})
    runtime = actionrt_runtime_factory(ECHO, plugins=[EchoPlugin(Echo(classify=lambda r: verdict))])

    async with runtime:
        result = await runtime.invoke("echo", params={"text": "x"})

    assert (route.call_count, result.status, result.error_code) == (1, "http_429", "echo:quota")
    assert (result.retry_after, result.provider_message) == (120, "daily quota")
    assert result.error == "the endpoint answered 429: echo:quota (Retry-After asks 120 s, past the deadline)"
    assert result.as_event()["retryAfter"] == 120
