"""`facebook.conversions`: the Conversions API, `POST graph.facebook.com/<version>/<pixel id>/events`.

The body is `{"data": [event, ...], "test_event_code"?}`, at most 1,000 events per request. Meta
accepts customer contact information only SHA-256 hashed after normalising (trimmed, lower case;
phone numbers digits only, country code included): `shape_request` does that on every call, so
the journey maps plain values. It also drops the nulls `allowNull` fills in for fields a journey
left out (Graph refuses null parameters) and stamps `event_time` when the journey gave none.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import field_validator

from actionrt.connectors import TemplateConnector
from actionrt.http import HttpRequest, HttpResponse
from actionrt_facebook.graph import GRAPH_URL, GraphSettings, access_token_auth, classify_graph_error

MAX_EVENTS = 1000
ActionSource = Literal[
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NON_DIGITS = re.compile(r"\D")
_NON_LETTERS = re.compile(r"[^a-z]")


def _lower(value: str) -> str:
    return value.strip().lower()


def _phone(value: str) -> str:
    # Digits only, country code kept; "remove ... any leading zeros" (the "00" international
    # prefix, or a trunk "0" written before the country code).
    return _NON_DIGITS.sub("", value).lstrip("0")


def _letters(value: str) -> str:
    return _NON_LETTERS.sub("", value.strip().lower())


def _postcode(value: str) -> str:
    return value.strip().lower().replace(" ", "").split("-")[0]


# user_data fields Meta wants hashed, each with its normalisation (Customer Information Parameters).
NORMALISERS: dict[str, Callable[[str], str]] = {
    "em": _lower,
    "ph": _phone,
    "external_id": _lower,
    "fn": _lower,
    "ln": _lower,
    "ge": _letters,
    "db": lambda value: _NON_DIGITS.sub("", value),
    "ct": _letters,
    "st": _letters,
    "zp": _postcode,
    "country": _letters,
}


def hash_value(field: str, value: str) -> str:
    """The SHA-256 hex digest Meta expects for one customer-information value (already-hashed
    values pass through, so a journey may hash upstream)."""
    text = value.strip()
    if _HEX64.match(text.lower()):  # Meta's SDKs compare lower-cased: "ABC…" is a digest too
        return text.lower()
    return hashlib.sha256(NORMALISERS[field](text).encode("utf-8")).hexdigest()


def _hashed(field: str, value: Any) -> Any:
    if isinstance(value, str):
        return hash_value(field, value)
    if isinstance(value, list):
        return [hash_value(field, item) for item in value if isinstance(item, str) and item.strip()]
    return value


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v != []}
    return value


def shape_event(event: Mapping[str, Any], now: int) -> dict[str, Any]:
    """One event as Meta takes it: nulls dropped, customer information hashed, time stamped."""
    shaped: dict[str, Any] = _without_nulls(dict(event))
    shaped.setdefault("event_time", now)
    user = shaped.get("user_data")
    if isinstance(user, dict):
        shaped["user_data"] = {
            key: _hashed(key, value) if key in NORMALISERS else value for key, value in user.items()
        }
    return shaped


class ConversionsSettings(GraphSettings):
    """`facebook.conversions` settings."""

    pixelId: str
    """The pixel (dataset) id the events belong to."""
    testEventCode: str | None = None
    """Sends the events as test events (Events Manager > Test events); remove it in production."""
    actionSource: ActionSource = "website"
    """The `action_source` of the example event."""

    @field_validator("pixelId")
    @classmethod
    def _numeric(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("must be the numeric pixel (dataset) id")
        return value


class Conversions(TemplateConnector):
    """Server events for a pixel; customer information hashed on every call."""

    name = "facebook.conversions"
    description = "Meta Conversions API: POST events to graph.facebook.com/<version>/<pixel>/events"
    settings_model = ConversionsSettings

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def template(self, settings: ConversionsSettings) -> dict[str, Any]:
        event = {
            "event_name": "Purchase",
            "event_time": 1762902353,
            "action_source": settings.actionSource,
            "event_id": "order-1001",
            "event_source_url": "https://shop.example.com/checkout",
            "user_data": {
                "em": "ada@example.com",
                "ph": "+33 6 12 34 56 78",
                "external_id": "customer-42",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Mozilla/5.0",
            },
            "custom_data": {"currency": "EUR", "value": 129.9},
        }
        sample: dict[str, Any] = {"data": [event]}
        if settings.testEventCode:
            sample["test_event_code"] = settings.testEventCode
        return {
            "description": "Send server events to the Meta Conversions API",
            "endpoint": {
                "url": f"{GRAPH_URL}/{settings.apiVersion}/{settings.pixelId}/events",
                "method": "POST",
            },
            "authentication": access_token_auth(settings.accessToken),
            "request": {
                "sample": sample,
                "variables": {"data": {"label": "Events"}},
                # A journey may leave event fields out; shape_request drops the nulls.
                "allowNull": True,
            },
            "response": {"sample": {"events_received": 1, "fbtrace_id": "AbCdEfGh123"}},
            "errorResponse": {
                "sample": {
                    "error": {
                        "message": "Invalid parameter",
                        "type": "OAuthException",
                        "code": 100,
                        "error_subcode": 2804008,
                        "fbtrace_id": "AbCdEfGh123",
                    }
                }
            },
        }

    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
        """Hash customer information, drop nulls, stamp `event_time`; refuse over 1,000 events."""
        if request.content is None:
            return
        body = json.loads(request.content)
        events = body.get("data")
        if not isinstance(events, list) or not events:
            raise ValueError("data: at least one event is required")
        if len(events) > MAX_EVENTS:
            raise ValueError(f"data: {len(events)} events; the Conversions API takes at most {MAX_EVENTS}")
        now = int(self._clock())
        body["data"] = [shape_event(event, now) for event in events]
        request.content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def classify_response(self, response: HttpResponse) -> bool | None:
        return classify_graph_error(response)
