"""JSON on the call path: each call's body encoded, each answer decoded, by orjson, with the
standard library's results kept exactly where orjson would differ.

orjson encodes the bench's five-field body in ~0.4 µs against ~4 µs for `json` (compact
separators, `ensure_ascii=False`), and decodes a small answer in ~0.7 µs against ~2.5 µs
(`uv run python bench/call_path.py`; bench/README.md). Where the two differ:

- encoding: orjson refuses integers past 64 bits, keys that are not strings and lone surrogates
  (TypeError): `json` then encodes, or raises its own error, as before. orjson writes NaN and
  infinities as null where `json` refuses them: a call's values are coerced finite
  (prepare.py) and a sample's constants are checked finite when the action loads.
- decoding: orjson refuses NaN, Infinity, lone surrogates, a BOM and numbers past a double;
  `json` then reads them as it always did. orjson reads an integer past 64 bits as a float:
  an answer with 20 digits in a row goes to `json` whole.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["decode_json", "encode_json"]

_encode_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
# 20 digits in a row: longer than any 64-bit integer orjson reads exactly (u64 has 20, i64 19).
# Found as 20 zeros in the answer with its digits made zeros: ~2,300 instructions for a small
# answer against ~7,200 for `re.search(rb"[0-9]{20}")` (callgrind, the bench's answer).
_DIGITS_AS_ZEROS: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS: Final = b"0" * 20


def encode_json(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON; ValueError for what JSON can't hold (lone surrogates,
    circular data), TypeError for a value of no JSON type: the standard library's errors.
    Its floats must be finite: orjson writes NaN as null (the call builder's values are)."""
    try:
        return _orjson_dumps(value)
    except TypeError:
        return _encode_text(value).encode()


def decode_json(content: bytes) -> Any:
    """`content` parsed as JSON, as `json.loads` parses it (ValueError when it is not JSON,
    UnicodeDecodeError included)."""
    if content.translate(_DIGITS_AS_ZEROS).find(_LONG_DIGITS) < 0:
        try:
            return _orjson_loads(content)
        except _JSONDecodeError:
            pass  # maybe JSON that only `json` reads (NaN, a BOM...): it decides
    return json.loads(content)
