"""The request models' depth check (`models.py`): a body's bytes counted first, the walk only
when the count can't tell, the same refusals and places either way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from actionrt.service import models
from actionrt.service.api import parse_model
from actionrt.service.models import MAX_DEPTH, CallBody, too_deep, within_depth


def nested(depth: int) -> str:
    """`depth` objects one in another: `depth` brackets, the innermost value `depth` levels down."""
    return '{"a":' * depth + "1" + "}" * depth


def call_body(depth: int) -> bytes:
    """An invoke body whose params are `nested(depth)`: one bracket more in all."""
    return f'{{"params": {nested(depth)}}}'.encode()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The values the models' depth validators walk (`too_deep`), recorded."""
    walked: list[Any] = []

    def recorded(value: Any, limit: int = MAX_DEPTH) -> str | None:
        walked.append(value)
        return too_deep(value, limit)

    monkeypatch.setattr(models, "too_deep", recorded)
    return walked


def test_the_bracket_count_tells_a_body_can_not_be_too_deep_up_to_the_limit() -> None:
    assert within_depth(nested(MAX_DEPTH).encode())
    assert not within_depth(nested(MAX_DEPTH + 1).encode())
    assert within_depth(json.dumps([{}] * (MAX_DEPTH - 1)).encode())  # every bracket counts
    assert not within_depth(json.dumps([{}] * MAX_DEPTH).encode())
    assert not within_depth(json.dumps({"s": "[" * (MAX_DEPTH + 1)}).encode())  # strings over-count


def test_a_body_the_count_passes_is_not_walked(walks: list[Any]) -> None:
    call = parse_model(call_body(MAX_DEPTH - 1), "application/json", CallBody)  # MAX_DEPTH brackets
    assert call.params == json.loads(nested(MAX_DEPTH - 1)) and walks == []


def test_a_body_the_count_can_not_pass_is_walked_and_refused_only_when_too_deep(walks: list[Any]) -> None:
    deepest = parse_model(call_body(MAX_DEPTH), "application/json", CallBody)  # one bracket more
    assert deepest.params == json.loads(nested(MAX_DEPTH)) and len(walks) == 1
    bracketed = json.dumps({"params": {"s": "[" * (MAX_DEPTH + 1)}}).encode()
    assert parse_model(bracketed, "application/json", CallBody).params == {"s": "[" * (MAX_DEPTH + 1)}
    with pytest.raises(RequestValidationError) as refused:
        parse_model(call_body(MAX_DEPTH + 1), "application/json", CallBody)
    (error,) = refused.value.errors()
    assert error["loc"] == ("body", "params")
    assert error["msg"].endswith(
        f"nested deeper than {MAX_DEPTH} levels at {'.'.join(['a'] * (MAX_DEPTH + 1))}"
    )


def test_without_the_counted_body_the_validators_walk() -> None:
    too_deep_params = json.loads(nested(MAX_DEPTH + 1))
    with pytest.raises(ValidationError, match=f"nested deeper than {MAX_DEPTH} levels at a.a"):
        CallBody.model_validate({"params": too_deep_params})
    with pytest.raises(ValidationError, match=f"nested deeper than {MAX_DEPTH} levels at a.a"):
        CallBody.model_validate_json(call_body(MAX_DEPTH + 1))


@pytest.mark.parametrize(
    ("value", "limit", "where"),
    [
        ({"x": 1, "a": {"b": [0, [1]]}}, 2, "a.b[1]"),
        ({"a": [{"b": {}}, {"c": [[]]}]}, 2, "a[1].c"),
        ({"a": [{"b": {}}, {"c": [[]]}]}, 3, "a[1].c[0]"),
        ([[1]], 0, "[0]"),
        (5, -1, ""),
        ({"a": {}}, 0, "a"),
        ({"a": {}}, 1, None),
        ([[], {}], 1, None),
    ],
)
def test_too_deep_names_the_first_place_found(value: Any, limit: int, where: str | None) -> None:
    assert too_deep(value, limit) == where
