"""`facebook.conversions`: the Conversions API, `POST graph.facebook.com/<version>/<pixel id>/events`.

The body is `{"data": [event, ...], "test_event_code"?}`, at most 1,000 events per request. Meta
accepts customer contact information only SHA-256 hashed after normalising each field by its own
rule (`NORMALISERS`): `shape_request` does that on every call, so the journey maps plain values.
It also drops the nulls `allowNull` fills in for fields a journey left out (Graph refuses null
parameters) and stamps `event_time` when the journey gave none.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import field_validator

from actionrt.connectors import TemplateConnector, Verdict
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
_DATE_PARTS = re.compile(r"\d+")

# The rules below follow Meta's Customer Information Parameters page,
# https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
# and Meta's own SDK (facebook-python-business-sdk, facebook_business/adobjects/serverside/normalize.py).


def _lower(value: str) -> str:
    return value.strip().lower()


def _phone(value: str) -> str:
    # ph: "Digits only including country code and area code"; "remove ... any leading zeros"
    # (the "00" international prefix, or a trunk "0" written before the country code).
    return _NON_DIGITS.sub("", value).lstrip("0")


def _letters(value: str) -> str:
    # fn / ln: "Lowercase letters only with no punctuation. If using special characters, the text
    # must be encoded in UTF-8 format" (O'Brien -> obrien). ct / st / country: lower case, no
    # spaces or punctuation; Meta's SDK removes digits, spaces, '.', '-' and parentheses and keeps
    # every other letter in UTF-8 (São Paulo -> sãopaulo). NFC first, so a decomposed "ã" is one
    # letter and not an "a" plus a dropped accent.
    text = unicodedata.normalize("NFC", value.strip().lower())
    return "".join(char for char in text if char.isalpha())


def _gender(value: str) -> str:
    # ge: "Gender, in lowercase letter: f for female, m for male" (Meta's SDK keeps the first
    # letter: Female -> f).
    letter = _letters(value)[:1]
    if letter not in ("f", "m"):
        raise ValueError(f"user_data.ge: {value!r} is not a gender Meta accepts (f or m)")
    return letter


def _birth_date(value: str) -> str:
    # db: "YYYYMMDD format ... Input: 2/16/1997, Normalized format: 19970216". Year first
    # (1997-02-16) or Meta's month-first example (2/16/1997); day-first when the first number
    # cannot be a month (16/02/1997).
    text = value.strip()
    parts = _DATE_PARTS.findall(text)
    if len(parts) == 1 and len(parts[0]) == 8:
        year, month, day = int(parts[0][:4]), int(parts[0][4:6]), int(parts[0][6:])
    elif len(parts) == 3 and len(parts[0]) == 4:
        year, month, day = (int(part) for part in parts)
    elif len(parts) == 3 and len(parts[2]) == 4:
        month, day, year = (int(part) for part in parts)
        if month > 12:
            month, day = day, month
    else:
        raise ValueError(f"user_data.db: {value!r} is not a date (YYYYMMDD, YYYY-MM-DD or M/D/YYYY)")
    try:
        return datetime.date(year, month, day).strftime("%Y%m%d")
    except ValueError:
        raise ValueError(f"user_data.db: {value!r} is not a valid date") from None


def _postcode(value: str) -> str:
    # zp: "Use lowercase with no spaces and no dash. Use only the first 5 digits for U.S. zip codes."
    return value.strip().lower().replace(" ", "").split("-")[0]


def _trimmed(value: str) -> str:
    # external_id: "Any unique ID from the advertiser" — Meta documents no normalisation, and an
    # id is case-sensitive (ABC-1 and abc-1 may be two customers): only the surrounding spaces go.
    return value.strip()


# user_data fields Meta wants hashed, each with its normalisation (Customer Information Parameters).
NORMALISERS: dict[str, Callable[[str], str]] = {
    "em": _lower,
    "ph": _phone,
    "external_id": _trimmed,
    "fn": _letters,
    "ln": _letters,
    "ge": _gender,
    "db": _birth_date,
    "ct": _letters,
    "st": _letters,
    "zp": _postcode,
    "country": _letters,
}


def hash_value(field: str, value: str) -> str:
    """The SHA-256 hex digest Meta expects for one customer-information value (already-hashed
    values pass through, so a journey may hash upstream). ValueError for a value Meta cannot
    take (a gender other than f/m, a birth date that is not a date)."""
    text = value.strip()
    if field != "external_id" and _HEX64.match(text.lower()):
        return text.lower()  # Meta's SDKs compare lower-cased: "ABC…" is a digest too
    if field == "external_id" and _HEX64.match(text):
        return text
    return hashlib.sha256(NORMALISERS[field](text).encode("utf-8")).hexdigest()


def _hashed(field: str, value: Any) -> Any:
    if isinstance(value, str):
        return hash_value(field, value)
    if isinstance(value, list):
        return [hash_value(field, item) for item in value if isinstance(item, str) and item.strip()]
    return value


# Meta's own examples where the page gives one (Customer Information Parameters).
USER_DATA_SAMPLE: dict[str, Any] = {
    "em": "john_smith@gmail.com",
    "ph": "16505551212",
    "fn": "mary",
    "ln": "smith",
    "ge": "f",
    "db": "19970216",
    "ct": "menlopark",
    "st": "ca",
    "zp": "94025",
    "country": "us",
    "external_id": "customer-42",
    "client_ip_address": "203.0.113.7",
    "client_user_agent": "Mozilla/5.0",
    "fbc": "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
    "fbp": "fb.1.1558571054389.1098115397",
    "subscription_id": "sub-1",
    "fb_login_id": "1234567890",
    "lead_id": "1234567890123456",
}


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
            # Every customer-information parameter Meta documents, so a journey may map any of
            # them (allowNull: those it leaves out are dropped by shape_request).
            "user_data": USER_DATA_SAMPLE,
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

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        return classify_graph_error(response)
