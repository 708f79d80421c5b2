"""InvocationResult: status codes, journey fields, step events."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from actionrt.results import InvocationResult, http_status_code, parse_json_body


def result(**fields: Any) -> InvocationResult:
    base: dict[str, Any] = dict(
        action="loyaltyUpdate",
        status="http_200",
        ok=True,
        http_status=200,
        response={"customerID": "c1", "points": 3},
        error_response=None,
        attempts=1,
        error=None,
        error_class=None,
        error_code=None,
        origin_error_class=None,
        origin_error_code=None,
        elapsed=0.01,
        queued_seconds=0.0,
        endpoint="https://api.example.com/v1/loyalty",
        method="POST",
    )
    base.update(fields)
    return InvocationResult(**base)


def test_http_status_codes() -> None:
    assert http_status_code(200) == "http_200"
    assert http_status_code(404) == "http_404"
    assert http_status_code(999) == "http_999"


def test_journey_fields_merge_the_response_with_the_status() -> None:
    assert result().as_journey_fields() == {
        "customerID": "c1",
        "points": 3,
        "jo_status_code": "http_200",
        "errorResponse": None,
    }
    failed = result(
        status="http_404",
        ok=False,
        http_status=404,
        response=None,
        error_response={"errorResponse": "customer not found"},
    )
    assert failed.as_journey_fields() == {
        "jo_status_code": "http_404",
        "errorResponse": {"errorResponse": "customer not found"},
    }
    listed = result(response=[1, 2])
    assert listed.as_journey_fields() == {"jo_status_code": "http_200", "errorResponse": None}


def test_a_result_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        result().status = "x"  # type: ignore[misc]


def test_the_step_event_is_flat_json_without_bodies() -> None:
    event = replace(
        result(),
        status="timedout",
        ok=False,
        error_class="timeout",
        error_code="timedout",
        origin_error_class="http",
        origin_error_code="500",
        attempts=2,
    ).as_event()
    json.dumps(event)
    assert event["status"] == "timedout" and event["attempts"] == 2
    assert (event["originErrorClass"], event["originErrorCode"]) == ("http", "500")
    assert "response" not in event and "c1" not in json.dumps(event)
    assert event["endpoint"] == "https://api.example.com/v1/loyalty"


@pytest.mark.parametrize(
    ("content", "parsed"),
    [
        (b'{"a":1}', ({"a": 1}, True)),
        (b"", (None, True)),
        (b"oops", (None, False)),
        (b"\xff\xfe", (None, False)),
        (b"[1]", ([1], True)),
    ],
)
def test_parse_json_body(content: bytes, parsed: tuple[Any, bool]) -> None:
    assert parse_json_body(content) == parsed


def test_made_is_the_constructor_for_every_field() -> None:
    import pickle
    from dataclasses import fields

    values = {f.name: f"value of {f.name}" for f in fields(InvocationResult)}
    made = InvocationResult.made(**values)  # type: ignore[arg-type]
    built = InvocationResult(**values)  # type: ignore[arg-type]
    assert type(made) is InvocationResult
    assert made == built and repr(made) == repr(built) and hash(made) == hash(built)
    assert pickle.loads(pickle.dumps(made)) == built
    assert replace(made, ok=False) == replace(built, ok=False)
    with pytest.raises(FrozenInstanceError):
        made.status = "x"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del made.status  # type: ignore[misc]
    defaults = InvocationResult.made(*list(values.values())[:16])  # type: ignore[arg-type]
    assert defaults == InvocationResult(*list(values.values())[:16])  # type: ignore[arg-type]
