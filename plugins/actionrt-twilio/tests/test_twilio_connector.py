"""`twilio.sms` sends what Twilio documents and reads Twilio's errors as Twilio describes them.

Messages API: https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
(POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form fields To, From, Body; HTTP Basic).
Error body: https://www.twilio.com/docs/usage/twilios-response; codes 21211 and 20429 from
https://www.twilio.com/docs/api/errors/21211 and https://www.twilio.com/docs/api/errors/20429.
"""

from __future__ import annotations

import base64
from typing import Any

import actionrt_twilio
import httpx
import pytest
import respx

from actionrt.connectors import Verdict
from actionrt.errors import ValidationError
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent, http_response

ACCOUNT = "AC" + "0" * 31 + "1"
API_KEY = "SK" + "0" * 31 + "2"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"

# Twilio's documented answers.
CREATED = {"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued", "to": "+15558675310"}
INVALID_TO = {
    "code": 21211,
    "message": "The 'To' number 5551234567 is not a valid phone number.",
    "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400,
}
TOO_MANY = {
    "code": 20429,
    "message": "Too Many Requests",
    "more_info": "https://www.twilio.com/docs/errors/20429",
    "status": 429,
}


def sms(**settings: Any) -> dict[str, Any]:
    base = {"accountSid": ACCOUNT, "authToken": "{{ secrets.TWILIO_TOKEN }}", "sender": "+15017122661"}
    return {"name": "shippedSms", "connector": "twilio.sms", "settings": {**base, **settings}}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_an_sms_is_a_form_post_with_the_account_sid_and_token(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(MESSAGES_URL).respond(201, json=CREATED)
    runtime = actionrt_runtime_factory(
        sms(statusCallback="https://shop.example.com/twilio/status"),
        plugins=[actionrt_twilio],
        secrets={"TWILIO_TOKEN": "auth-t0ken"},
    )

    async with runtime:
        result = await runtime.invoke(
            "shippedSms", params={"To": "+15558675310", "Body": "Shipped & on its way"}
        )

    assert (result.status, result.ok, result.response) == ("http_201", True, CREATED)
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=MESSAGES_URL,
        headers={"Authorization": basic(ACCOUNT, "auth-t0ken")},
        form={
            "To": "+15558675310",
            "Body": "Shipped & on its way",
            "From": "+15017122661",
            "StatusCallback": "https://shop.example.com/twilio/status",
        },
    )


async def test_an_api_key_authenticates_and_a_messaging_service_picks_the_sender(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(MESSAGES_URL).respond(201, json=CREATED)
    settings = {
        "accountSid": ACCOUNT,
        "apiKeySid": API_KEY,
        "apiKeySecret": "{{ secrets.KEY_SECRET }}",
        "messagingServiceSid": "MG" + "0" * 32,
    }
    action = {"name": "shippedSms", "connector": "twilio.sms", "settings": settings}
    runtime = actionrt_runtime_factory(action, plugins=[actionrt_twilio], secrets={"KEY_SECRET": "s3cret"})

    async with runtime:
        result = await runtime.invoke("shippedSms", params={"To": "+15558675310", "Body": "hi"})

    assert result.ok, result.error
    assert_request_sent(
        actionrt_respx,
        headers={"Authorization": basic(API_KEY, "s3cret")},
        form={"To": "+15558675310", "Body": "hi", "MessagingServiceSid": "MG" + "0" * 32},
    )


async def test_an_invalid_number_is_final_with_twilios_code_and_message(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(MESSAGES_URL).respond(400, json=INVALID_TO)
    runtime = actionrt_runtime_factory(
        {**sms(), "retry": {"count": 3, "policy": "reference"}},
        plugins=[actionrt_twilio],
        secrets={"TWILIO_TOKEN": "t"},
    )

    async with runtime:
        result = await runtime.invoke("shippedSms", params={"To": "5551234567", "Body": "hi"})

    assert (route.call_count, result.status, result.error_code) == (1, "http_400", "twilio:21211")
    assert result.provider_message == INVALID_TO["message"]
    assert result.retry_after is None


async def test_too_many_requests_waits_a_moment_and_retries(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(MESSAGES_URL).mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "0"}),
            httpx.Response(201, json=CREATED),
        ]
    )
    runtime = actionrt_runtime_factory(sms(), plugins=[actionrt_twilio], secrets={"TWILIO_TOKEN": "t"})

    async with runtime:
        result = await runtime.invoke("shippedSms", params={"To": "+15558675310", "Body": "hi"})

    assert (route.call_count, result.ok, result.origin_error_code) == (2, True, "twilio:20429")


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(201, json=CREATED), None),
        (http_response(400, json=INVALID_TO), Verdict.do_not_retry("twilio:21211", INVALID_TO["message"])),
        (http_response(429, json=TOO_MANY), Verdict.retry_later(1, "twilio:20429", "Too Many Requests")),
        (
            http_response(429, json=TOO_MANY, headers={"Retry-After": "7"}),
            Verdict.retry_later(7, "twilio:20429", "Too Many Requests"),
        ),
        (http_response(503, text="Service Unavailable"), None),
    ],
)
def test_twilio_answers_decide_the_retry(answer: Any, verdict: Verdict | None) -> None:
    assert actionrt_twilio.TwilioSms(clock=lambda: 0.0).classify_response(answer) == verdict


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"accountSid": "12345"}, "settings.accountSid: must be the account SID"),
        ({"apiKeySid": API_KEY, "apiKeySecret": "x"}, "give authToken, or apiKeySid and apiKeySecret"),
        ({"messagingServiceSid": "MG1"}, "give exactly one of sender and messagingServiceSid"),
    ],
)
def test_bad_settings_are_refused_at_load(settings: dict[str, Any], message: str) -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_twilio], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse(sms(**settings), "shippedSms.yaml")
    assert message in str(caught.value)


def test_the_plugin_declares_its_api_range_and_registers_cleanly() -> None:
    plugins = Plugins.load([actionrt_twilio], entry_points=False)
    assert plugins.failures == [] and "twilio.sms" in plugins.connectors
    assert actionrt_twilio.ACTIONRT_PLUGIN_API == ">=1.0,<2"
