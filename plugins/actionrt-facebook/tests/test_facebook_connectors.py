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

from actionrt.connectors import Verdict
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
    # external_id is case-sensitive: Meta documents no normalisation for it beyond hashing.
    assert shaped["user_data"]["external_id"] == [
        hash_value("external_id", "A-1"),
        hash_value("external_id", "a-1"),
    ]
    assert hash_value("external_id", "A-1") != hash_value("external_id", "a-1")


# Meta's own examples (Customer Information Parameters): input, normalised value, published digest.
# https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
META_EXAMPLES = [
    ("em", "John_Smith@gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    ("ph", "+1 (650) 555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("fn", "Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    ("db", "2/16/1997", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
]


@pytest.mark.parametrize(("field", "raw", "digest"), META_EXAMPLES)
def test_metas_published_examples_hash_to_metas_digests(field: str, raw: str, digest: str) -> None:
    assert hash_value(field, raw) == digest


@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        # fn/ln: "Lowercase letters only with no punctuation"; UTF-8 letters kept.
        ("ln", "O'Brien", "obrien"),
        ("fn", "Mary-Ann.", "maryann"),
        ("fn", "Zoë", "zoë"),
        ("fn", "Zoe\u0308", "zoë"),  # a decomposed accent is the same letter
        # ct/st/country: Meta's SDK keeps UTF-8 letters, drops spaces, digits and punctuation.
        ("ct", "São Paulo", "sãopaulo"),
        ("ct", "München", "münchen"),
        ("st", "Île-de-France", "îledefrance"),
        # ge: "f for female, m for male".
        ("ge", "Female", "f"),
        ("ge", " M ", "m"),
        # db: YYYYMMDD, from Meta's example format and from year-first or day-first dates.
        ("db", "1997-02-16", "19970216"),
        ("db", "16/02/1997", "19970216"),
        ("db", "19970216", "19970216"),
    ],
)
def test_each_rule_normalises_like_meta(field: str, raw: str, normalised: str) -> None:
    import hashlib

    assert hash_value(field, raw) == hashlib.sha256(normalised.encode()).hexdigest()


@pytest.mark.parametrize(("field", "raw"), [("ge", "x"), ("db", "16 February"), ("db", "2/30/1997")])
def test_values_meta_cannot_take_are_bad_input_naming_the_field(field: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"user_data.{field}"):
        hash_value(field, raw)


async def test_every_customer_information_field_can_be_mapped_by_a_journey(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(EVENTS_URL).respond(200, json={"events_received": 1})
    runtime = actionrt_runtime_factory(
        CONVERSIONS, plugins=[actionrt_facebook], secrets={"FB_TOKEN": "EAAtoken"}
    )
    user = {
        "fn": "Mary",
        "ln": "O'Brien",
        "ge": "Female",
        "db": "2/16/1997",
        "ct": "São Paulo",
        "st": "SP",
        "zp": "01310-100",
        "country": "BR",
        "fbp": "fb.1.1558571054389.1098115397",
    }
    event = {"event_name": "Lead", "event_time": 1762902353, "action_source": "website", "user_data": user}

    async with runtime:
        result = await runtime.invoke("purchase", params={"data": [event]})

    assert result.ok, result.error
    sent = json.loads(actionrt_respx.calls.last.request.content)["data"][0]["user_data"]
    assert sent["fn"] == META_EXAMPLES[2][2]
    assert sent["ln"] == hash_value("ln", "obrien")
    assert sent["db"] == META_EXAMPLES[3][2]
    assert sent["fbp"] == "fb.1.1558571054389.1098115397"  # not hashed: Meta takes it plain


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


RATE_LIMITED = {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(200, json={"events_received": 1}), None),
        (
            http_response(400, json={"error": {"code": 100, "message": "Invalid parameter"}}),
            Verdict.do_not_retry("graph:100", "Invalid parameter"),
        ),
        (
            http_response(400, json={"error": {"code": 190, "message": "Invalid OAuth access token"}}),
            Verdict.do_not_retry("graph:190", "Invalid OAuth access token"),
        ),
        (
            http_response(500, json={"error": {"code": 2, "message": "Service temporarily unavailable"}}),
            Verdict.retry_now("graph:2", "Service temporarily unavailable"),
        ),
        (
            http_response(400, json={"error": {"code": 100, "message": "x", "is_transient": True}}),
            Verdict.retry_now("graph:100", "x"),
        ),
        (http_response(502, text="<html>bad gateway</html>"), None),
    ],
)
def test_graph_errors_decide_the_retry(answer: Any, verdict: Verdict | None) -> None:
    assert Conversions().classify_response(answer) == verdict
    assert Messenger().classify_response(answer) == verdict


@pytest.mark.parametrize("code", [4, 17, 32, 341, 613, 80004])
def test_rate_limits_retry_later_even_when_marked_transient(code: int) -> None:
    # https://developers.facebook.com/docs/graph-api/overview/rate-limiting/ : "the API will return
    # an error code until enough time has passed for the call count to drop below the limit".
    body = {"error": {"message": "Calls exceeded", "code": code, "is_transient": True}}
    verdict = Conversions().classify_response(http_response(400, json=body))
    assert verdict == Verdict.retry_later(3600, f"graph:{code}", "Calls exceeded")


def test_the_business_use_case_header_says_how_long_to_wait() -> None:
    # Meta's example header (Rate Limits page): estimated_time_to_regain_access is in minutes.
    usage = {
        "112233445566778899": [
            {
                "type": "pages",
                "call_count": 100,
                "total_cputime": 25,
                "total_time": 25,
                "estimated_time_to_regain_access": 19,
            }
        ]
    }
    answer = http_response(
        400,
        json={"error": RATE_LIMITED},
        headers={
            "X-Business-Use-Case-Usage": json.dumps(usage),
            "X-App-Usage": '{"call_count": 100, "total_time": 25, "total_cputime": 25}',
        },
    )
    verdict = Messenger().classify_response(answer)
    assert verdict is not None and verdict.retry == "later" and verdict.after == 19 * 60
    assert verdict.code == "graph:17"


def test_the_ad_account_header_says_how_long_to_wait() -> None:
    answer = http_response(
        400,
        json={"error": RATE_LIMITED},
        headers={"X-Ad-Account-Usage": '{"acc_id_util_pct": 100, "reset_time_duration": 120}'},
    )
    verdict = Conversions().classify_response(answer)
    assert verdict is not None and verdict.after == 120


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
