"""Fuzzing the loader: whatever the input, the only exception is actionrt.ValidationError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionrt import ValidationError
from actionrt.definition import parse_action
from actionrt.loader import parse_document

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)

keys = st.sampled_from(
    [
        "name",
        "endpoint",
        "url",
        "method",
        "headers",
        "request",
        "sample",
        "variables",
        "authentication",
        "type",
        "timeout",
        "retry",
        "response",
        "queryParameters",
        "label",
        "value",
        "variable",
        "body",
        "tokenInResponse",
        "cacheDuration",
        "dynamicPath",
    ]
)
shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["POST", "GET", "https://api.example.com/x", "customAuthorization", "basic"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=json_values | shaped)
def test_parse_action_raises_only_validation_error(raw, plugins):
    try:
        parse_action(raw, source="fuzz.yaml", plugins=plugins)
    except ValidationError as exc:
        assert exc.problems and all(p.source == "fuzz.yaml" for p in exc.problems)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_parse_document_raises_only_validation_error(text):
    for json_only in (False, True):
        with contextlib.suppress(ValidationError):
            parse_document(text, source="fuzz.yaml", json_only=json_only)
