"""Header fields that cannot break the request's framing: checked before anything is sent."""

from __future__ import annotations

import re
from collections.abc import Mapping

from actionrt.http.errors import InvalidRequestError

# Any control character but tab (legal inside a value, RFC 9110 §5.5): CR and LF would smuggle
# a header or a request in, NUL and the rest are refused or cut by servers, and a value filled
# from a secret at call time was never seen by the load-time header check.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The same less CR and LF, for a head already framed with CRLF (those are counted instead).
FRAMED_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_header_fields(headers: Mapping[str, str]) -> None:
    """Raise `InvalidRequestError` when a header name is empty or a name or value holds a
    control character other than tab; nothing may be sent then."""
    for name, value in headers.items():
        if not name or _HEADER_CONTROL.search(name) or _HEADER_CONTROL.search(value):
            raise invalid_header(headers)


def control_character(value: str) -> str | None:
    """The first control character (tab aside) in `value`, named (`CR`, `LF`, `NUL`, ...)."""
    bad = _HEADER_CONTROL.search(value)
    if bad is None:
        return None
    char = bad.group()
    return {"\r": "CR", "\n": "LF", "\x00": "NUL"}.get(char, f"control character {char!r}")


def invalid_header(headers: Mapping[str, str]) -> InvalidRequestError:
    """The refusal naming the header and the character, never the value (it may be a secret)."""
    for name, value in headers.items():
        if not name:
            return InvalidRequestError("a header name is empty")
        what = control_character(name)
        if what is not None:
            return InvalidRequestError(f"a header name contains {what}")
        what = control_character(value)
        if what is not None:
            return InvalidRequestError(f"header {name!r}: value contains {what}")
    return InvalidRequestError("a header name or value would break the framing")
