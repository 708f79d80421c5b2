"""`sendgrid.mail` sends what SendGrid documents and reads SendGrid's errors and rate-limit headers.

Mail Send: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send (POST /v3/mail/send,
Bearer API key, 202 Accepted). Rate limits:
https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits
(429 with X-RateLimit-Limit / -Remaining / -Reset, the reset a Unix time).
"""

from __future__ import annotations

from typing import Any

import actionrt_sendgrid
import pytest
import respx

from actionrt.connectors import Verdict
from actionrt.plugins import Plugins
from actionrt.testing import RuntimeFactory, assert_request_sent, http_response

SEND_URL = "https://api.sendgrid.com/v3/mail/send"
# SendGrid's documented rate-limit answer (the Rate Limits page's example).
RATE_LIMITED = {"errors": [{"field": None, "message": "too many requests"}]}
RESET = {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1392815263"}
BAD_FROM = {
    "errors": [{"message": "The from email does not contain a valid address.", "field": "from.email"}]
}


def mail(**settings: Any) -> dict[str, Any]:
    base = {"apiKey": "{{ secrets.SENDGRID_API_KEY }}", "fromEmail": "shop@example.com", "fromName": "Shop"}
    return {"name": "shippedEmail", "connector": "sendgrid.mail", "settings": {**base, **settings}}


TO = [{"email": "ada@example.com", "name": "Ada"}]


async def test_a_plain_email_is_posted_with_the_bearer_key(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(SEND_URL).respond(202)
    runtime = actionrt_runtime_factory(
        mail(), plugins=[actionrt_sendgrid], secrets={"SENDGRID_API_KEY": "SG.k"}
    )

    async with runtime:
        result = await runtime.invoke(
            "shippedEmail", params={"to": TO, "subject": "Shipped", "text": "On its way"}
        )

    assert (result.status, result.ok) == ("http_202", True)
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=SEND_URL,
        headers={"Authorization": "Bearer SG.k"},
        json={
            "personalizations": [{"to": TO}],
            "from": {"email": "shop@example.com", "name": "Shop"},
            "subject": "Shipped",
            "content": [{"type": "text/plain", "value": "On its way"}],
        },
    )


async def test_a_dynamic_template_in_the_eu_region(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post("https://api.eu.sendgrid.com/v3/mail/send").respond(202)
    runtime = actionrt_runtime_factory(
        mail(templateId="d-0123456789abcdef", region="eu"),
        plugins=[actionrt_sendgrid],
        secrets={"SENDGRID_API_KEY": "SG.k"},
    )
    data = {"first_name": "Ada", "order": "77"}

    async with runtime:
        params = {"to": TO, "dynamic_template_data.first_name": "Ada", "dynamic_template_data.order": "77"}
        result = await runtime.invoke("shippedEmail", params=params)

    assert result.ok, result.error
    assert_request_sent(
        actionrt_respx,
        headers={"Authorization": "Bearer SG.k"},
        json={
            "from": {"email": "shop@example.com", "name": "Shop"},
            "template_id": "d-0123456789abcdef",
            "personalizations": [{"to": TO, "dynamic_template_data": data}],
        },
    )


async def test_a_rate_limit_hands_back_the_wait_until_the_reset(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    route = actionrt_respx.post(SEND_URL).respond(
        429, json=RATE_LIMITED, headers={**RESET, "X-RateLimit-Reset": "9999999999"}
    )
    runtime = actionrt_runtime_factory(
        mail(), plugins=[actionrt_sendgrid], secrets={"SENDGRID_API_KEY": "SG.k"}
    )

    async with runtime:
        result = await runtime.invoke("shippedEmail", params={"to": TO, "subject": "S", "text": "T"})

    assert (route.call_count, result.status, result.error_code) == (1, "http_429", "sendgrid:429")
    assert result.retry_after is not None and result.retry_after > 30  # past any call's deadline
    assert result.provider_message == "too many requests"


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(202), None),
        (
            http_response(429, json=RATE_LIMITED, headers=RESET),
            Verdict.retry_later(63, "sendgrid:429", "too many requests"),
        ),
        (
            http_response(400, json=BAD_FROM),
            Verdict.do_not_retry(
                "sendgrid:400", "The from email does not contain a valid address. (from.email)"
            ),
        ),
        (
            http_response(401, json={"errors": [{"message": "The provided authorization grant is invalid"}]}),
            Verdict.do_not_retry("sendgrid:401", "The provided authorization grant is invalid"),
        ),
        (http_response(500, text="oops"), None),
    ],
)
def test_sendgrid_answers_decide_the_retry(answer: Any, verdict: Verdict | None) -> None:
    connector = actionrt_sendgrid.SendgridMail(clock=lambda: 1392815200.0)  # 63 s before the reset
    assert connector.classify_response(answer) == verdict


def test_the_plugin_declares_its_api_range_and_registers_cleanly() -> None:
    plugins = Plugins.load([actionrt_sendgrid], entry_points=False)
    assert plugins.failures == [] and "sendgrid.mail" in plugins.connectors
