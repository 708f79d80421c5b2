"""The Facebook connectors send what Meta documents.

Conversions API: https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api
(POST https://graph.facebook.com/{API_VERSION}/{PIXEL_ID}/events?access_token={TOKEN}, `data` = a
list of events) and .../parameters/customer-information-parameters (SHA-256 of normalised values).
Messenger: https://developers.facebook.com/docs/messenger-platform/reference/send-api
(POST /{PAGE_ID}/messages with recipient, messaging_type, message and the Page access token).
"""

from __future__ import annotations

import json
from typing import Any

import actionrt_facebook
import pytest
import respx
from actionrt_facebook import Conversions, Messenger, hash_value

from actionrt.errors import ValidationError
from actionrt.http import HttpRequest
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent, http_response

EVENTS_URL = "https://graph.facebook.com/v21.0/1234567890/events"
# Published hash vectors of the normalisation rules (Meta's and Snap's customer-information docs).
PERSON_AT_EXAMPLE = "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
PHONE_448444124653 = "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383"

CONVERSIONS = {
    "name": "purchase",
    "connector": "facebook.conversions",
    "settings": {
        "pixelId": "1234567890",
        "accessToken": "{{ secrets.FB_TOKEN }}",
        "testEventCode": "TEST123",
    },
}


def purchase(**user: Any) -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": 1762902353,
        "action_source": "website",
        "event_id": "order-1001",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": "Person@Example.com ",
            "ph": "+44 844 412 4653",
            "external_id": "customer-42",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            **user,
        },
        "custom_data": {"currency": "EUR", "value": 129.9},
    }


async def test_conversions_posts_events_to_the_pixel_with_the_token_and_test_code(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(EVENTS_URL).respond(200, json={"events_received": 1, "fbtrace_id": "Ab1"})
    runtime = actionrt_runtime_factory(
        CONVERSIONS, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAtoken"}
    )

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [purchase()]})

    assert result.ok
    assert result.response == {"events_received": 1, "fbtrace_id": "Ab1"}
    request = assert_request_sent(
        actionrt_respx, method="POST", url=EVENTS_URL, params={"access_token": "EAAtoken"}
    )
    body = json.loads(request.content)
    assert body["test_event_code"] == "TEST123"
    assert [event["event_id"] for event in body["data"]] == ["order-1001"]


def test_shape_request_hashes_normalised_customer_information() -> None:
    request = HttpRequest("POST", EVENTS_URL, {}, json.dumps({"data": [purchase()]}).encode())

    Conversions(clock=lambda: 1762900000.0).shape_request(request, {})

    assert request.content is not None
    assert json.loads(request.content) == {
        "data": [
            {
                "event_name": "Purchase",
                "event_time": 1762902353,
                "action_source": "website",
                "event_id": "order-1001",
                "event_source_url": "https://shop.example.com/checkout",
                "user_data": {
                    "em": PERSON_AT_EXAMPLE,
                    "ph": PHONE_448444124653,
                    "external_id": hash_value("external_id", "customer-42"),
                    # not contact information: sent as they are
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0",
                },
                "custom_data": {"currency": "EUR", "value": 129.9},
            }
        ]
    }


def test_shape_request_drops_nulls_stamps_the_time_and_keeps_prehashed_values() -> None:
    event = purchase(em=PERSON_AT_EXAMPLE, ph=None, external_id=["A-1", " a-1 "])
    event["event_time"] = None
    event["custom_data"] = None
    request = HttpRequest("POST", EVENTS_URL, {}, json.dumps({"data": [event]}).encode())

    Conversions(clock=lambda: 1762900000.9).shape_request(request, {})

    assert request.content is not None
    (shaped,) = json.loads(request.content)["data"]
    assert shaped["event_time"] == 1762900000
    assert "custom_data" not in shaped
    assert shaped["user_data"]["em"] == PERSON_AT_EXAMPLE
    assert "ph" not in shaped["user_data"]
    assert shaped["user_data"]["external_id"] == [hash_value("external_id", "a-1")] * 2


@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        ("em", "  Ada@Example.COM ", "ada@example.com"),
        ("ph", "0044 844-412-4653", "448444124653"),
        ("ct", "San Francisco", "sanfrancisco"),
        ("zp", "94035-1234", "94035"),
        ("db", "1985-12-10", "19851210"),
        ("country", "US", "us"),
    ],
)
def test_each_field_is_normalised_before_hashing(field: str, raw: str, normalised: str) -> None:
    assert hash_value(field, raw) == hash_value(field, normalised)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        # "Remove symbols, letters, and any leading zeros" (Customer Information Parameters).
        ("044 844 412 4653", "448444124653"),
        ("+0044 844 412 4653", "448444124653"),
    ],
)
def test_phone_numbers_lose_every_leading_zero(raw: str, normalised: str) -> None:
    assert hash_value("ph", raw) == hash_value("ph", normalised)


def test_a_value_hashed_upstream_in_upper_case_is_not_hashed_again() -> None:
    # Meta's SDKs lower-case before recognising a SHA-256: an upper-case digest is the same hash.
    assert hash_value("em", PERSON_AT_EXAMPLE.upper()) == PERSON_AT_EXAMPLE


def test_more_than_1000_events_is_bad_input() -> None:
    request = HttpRequest("POST", EVENTS_URL, {}, json.dumps({"data": [purchase()] * 1001}).encode())
    with pytest.raises(ValueError, match="1001 events; the Conversions API takes at most 1000"):
        Conversions().shape_request(request, {})


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(200, json={"events_received": 1}), None),
        (http_response(400, json={"error": {"code": 100, "message": "Invalid parameter"}}), False),
        (http_response(400, json={"error": {"code": 190, "message": "Invalid OAuth access token"}}), False),
        (http_response(400, json={"error": {"code": 17, "message": "User request limit reached"}}), True),
        (http_response(400, json={"error": {"code": 613, "message": "Calls exceeded"}}), True),
        (http_response(500, json={"error": {"code": 2, "is_transient": True}}), True),
        (http_response(502, text="<html>bad gateway</html>"), None),
    ],
)
def test_graph_errors_decide_the_retry(answer: Any, verdict: bool | None) -> None:
    assert Conversions().classify_response(answer) is verdict
    assert Messenger().classify_response(answer) is verdict


async def test_messenger_sends_a_text_message_with_the_page_token(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    url = "https://graph.facebook.com/v21.0/112233/messages"
    actionrt_respx.post(url).respond(200, json={"recipient_id": "PSID-1", "message_id": "m_1"})
    runtime = actionrt_runtime_factory(
        {
            "name": "shipped",
            "connector": "facebook.messenger",
            "settings": {"pageId": "112233", "accessToken": "{{ secrets.PAGE_TOKEN }}"},
        },
        plugins=[actionrt_facebook],
        secrets={"PAGE_TOKEN": "EAApage"},
    )

    async with runtime:
        result = await runtime.invoke(
            "shipped", params={"recipient.id": "PSID-1", "message.text": "hello, world"}
        )

    assert result.response == {"recipient_id": "PSID-1", "message_id": "m_1"}
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=url,
        params={"access_token": "EAApage"},
        json={"recipient": {"id": "PSID-1"}, "messaging_type": "UPDATE", "message": {"text": "hello, world"}},
    )


def test_message_tag_needs_its_tag() -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_facebook], entry_points=False))
    settings = {"accessToken": "t", "messagingType": "MESSAGE_TAG"}
    action = {"name": "m", "connector": "facebook.messenger", "settings": settings}
    with pytest.raises(ValidationError, match=r"m\.yaml: settings: tag is required with messagingType"):
        registry.parse(action, "m.yaml")
    tagged = registry.parse({**action, "settings": {**settings, "tag": "ACCOUNT_UPDATE"}}, "m.yaml")
    assert tagged.definition.request is not None
    assert tagged.definition.request.sample["tag"] == "ACCOUNT_UPDATE"


def test_bad_settings_are_reported_at_their_paths() -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_facebook], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse(
            {
                "name": "p",
                "connector": "facebook.conversions",
                "settings": {"pixelId": "px-1", "apiVersion": "21", "colour": "blue"},
            },
            "p.yaml",
        )
    assert str(caught.value).splitlines() == [
        "p.yaml: settings.accessToken: required setting",
        "p.yaml: settings.apiVersion: must look like v21.0",
        "p.yaml: settings.pixelId: must be the numeric pixel (dataset) id",
        "p.yaml: settings.colour: unknown setting",
    ]
