"""The call path's JSON: orjson's speed, the standard library's results where they would differ."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from actionrt.jsoncodec import decode_json, encode_json
from actionrt.results import parse_json_body


@pytest.mark.parametrize(
    "content",
    [
        b'{"customerID":"xY12hye","status":"gold","points":1290}',
        b"123456789012345678901234567890",  # past 64 bits: orjson would give a float
        b'{"id": 18446744073709551616, "n": [1, 2.5, -0]}',
        b"NaN",
        b"[Infinity, -Infinity]",
        b"1e400",
        b'"\\ud800"',
        b'\xef\xbb\xbf{"bom": true}',
        b'{"a": 1, "a": 2}',
        '{"é": "ü"}'.encode(),
        b"  [1]  ",
    ],
)
def test_an_answer_decodes_as_the_standard_library_decodes_it(content: bytes) -> None:
    decoded, expected = decode_json(content), json.loads(content)
    assert repr(decoded) == repr(expected)  # repr: nan == nan, and int stays int
    assert parse_json_body(content) == (decoded, True) or math.isnan(decoded)


@pytest.mark.parametrize("content", [b"{", b"not json", b'"\xff"', b"[1,]", b"\x00"])
def test_what_is_not_json_is_refused_as_before(content: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(content)
    assert parse_json_body(content) == (None, False)


@pytest.mark.parametrize(
    "value",
    [
        {"customer": {"email": "ada@example.com", "points": 1290, "ok": True}, "total": 12.5},
        {"big": 2**70},  # past 64 bits: orjson refuses, json writes it
        {1: "int-key"},  # orjson refuses, json writes "1"
        ["é", "\u2028", "\x01", None, (1, 2)],
        {"float": 1e16, "small": 1e-7},
    ],
)
def test_a_body_encodes_to_what_the_standard_library_reads_back(value: Any) -> None:
    encoded = encode_json(value)
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(encoded) == json.loads(expected)
    assert b" " not in encoded


@pytest.mark.parametrize(
    ("value", "error"),
    [({"x": "\ud800"}, ValueError), ({"x": object()}, TypeError), ({"x": [1, {"y": {2}}]}, TypeError)],
)
def test_what_json_cannot_hold_raises_the_standard_librarys_error(value: Any, error: type) -> None:
    with pytest.raises(error):
        encode_json(value)
