"""Per-call building: variable values coerced to their declared types, the sample filled in, the
null rules applied, and the URL (static + dynamic path + query) and headers assembled.

Everything that does not depend on the call is decided once per action by `CallBuilder`; its
`build()` is a straight line that raises `InputError` (naming the field) on bad input.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from types import CodeType
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from actionrt.definition import Action
from actionrt.errors import ActionrtError
from actionrt.jsoncodec import encode_json
from actionrt.payload import FieldSpec, FieldType, VariableSpec
from actionrt.secrets import MissingSecretError, SecretResolver, has_secrets

__all__ = ["JSON_CONTENT_TYPE", "CallBuilder", "InputError", "PreparedCall", "coercer"]

JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_INT64_DIGITS: Final = 20  # a sign and 19 digits

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# RFC 7230 §3.2: no control characters but horizontal tab in a field value. CR and LF would
# let a value start a new header (header injection).
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Characters a path segment may carry literally (RFC 3986 pchar minus '%'): '/', '?', '#' and
# '%' are always encoded, so a value can never leave its segment or the static prefix.
_SEGMENT_SAFE: Final = "!$&'()*+,;=:@"

_MISSING: Any = object()
_OMIT: Any = object()
_encode_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


MISSING_VARIABLE = "required variable is missing"


class InputError(ActionrtError):
    """A value given for one call cannot be used: `field` names it, the message says why.

    Never carries the value itself (it may be personal data): only its type. `code` is
    `input` for a caller's value, `secret` for a constant whose secret has no value.
    """

    def __init__(self, field: str, message: str, code: str = "input") -> None:
        self.field = field
        self.code = code
        super().__init__(f"{field}: {message}" if field else message)


class PreparedCall(NamedTuple):
    """What one call sends: full URL, the endpoint without its query, headers, body bytes.
    (`CallBuilder.build`; the engine reads the same fields as a plain tuple, `parts`.)"""

    url: str
    endpoint: str
    headers: dict[str, str]
    content: bytes | None


Coerce = Callable[[Any, str], Any]
"""Turns one value into its JSON form for a declared type, or raises InputError at `path`."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "a list",
        tuple: "a list",
        dict: "an object",
    }.get(type(value), f"a {type(value).__name__}")


def _string(value: Any, path: str) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # Python refuses to print an int of more than 4,300 digits
            raise InputError(path, "expected a string, got an integer with too many digits") from None
    raise InputError(path, f"expected a string, got {_kind(value)}")


def _integer(value: Any, path: str) -> Any:
    if type(value) is int:
        number = value
    elif isinstance(value, bool):
        raise InputError(path, "expected an integer, got a boolean")
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, float | Decimal):
        if not (math.isfinite(value) and value == int(value)):
            raise InputError(path, "expected an integer, got a number with a fraction")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise InputError(path, "expected an integer, got a string that is not one")
        if len(text) > _INT64_DIGITS:  # int() of thousands of digits is slow, then refused
            raise InputError(path, "integer out of the 64-bit range")
        number = int(text)
    else:
        raise InputError(path, f"expected an integer, got {_kind(value)}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise InputError(path, "integer out of the 64-bit range")
    return number


def _decimal(value: Any, path: str) -> Any:
    if type(value) is float:
        number = value
    elif isinstance(value, bool):
        raise InputError(path, "expected a decimal, got a boolean")
    elif isinstance(value, int | float | Decimal):
        try:
            number = float(value)
        except OverflowError:  # an int past the largest double
            raise InputError(path, "expected a finite decimal") from None
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise InputError(path, "expected a decimal, got a string that is not a number")
        number = float(text)
    else:
        raise InputError(path, f"expected a decimal, got {_kind(value)}")
    if not math.isfinite(number):
        raise InputError(path, "expected a finite decimal")
    return number


def _boolean(value: Any, path: str) -> Any:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise InputError(path, "expected a boolean (true or false), got another string")
    raise InputError(path, f"expected a boolean, got {_kind(value)}")


def _parse_datetime(value: Any, path: str, what: str, example: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if "T" in text or " " in text:
            try:
                return datetime.fromisoformat(text)
            except ValueError:
                pass
        raise InputError(path, f"expected {what} as ISO-8601 ({example})")
    raise InputError(path, f"expected {what}, got {_kind(value)}")


def _date_time(value: Any, path: str) -> Any:
    moment = _parse_datetime(value, path, "a date-time", "2026-11-27T10:00:00Z")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(path, "a dateTime needs a UTC offset or Z (dateTimeOnly has none)")
    return value.strip() if isinstance(value, str) else moment.isoformat()


def _date_time_only(value: Any, path: str) -> Any:
    moment = _parse_datetime(value, path, "a local date-time", "2026-11-27T10:00:00")
    if moment.tzinfo is not None:
        raise InputError(path, "a dateTimeOnly has no UTC offset (dateTime has one)")
    return value.strip() if isinstance(value, str) else moment.isoformat()


def _date_only(value: Any, path: str) -> Any:
    if isinstance(value, datetime):
        raise InputError(path, "expected a date, got a date-time")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                date.fromisoformat(text)
                return text
            except ValueError:
                pass
        raise InputError(path, "expected a date as ISO-8601 (2026-11-27)")
    raise InputError(path, f"expected a date, got {_kind(value)}")


_SCALARS: Final[dict[FieldType, Coerce]] = {
    FieldType.STRING: _string,
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE_TIME: _date_time,
    FieldType.DATE_TIME_ONLY: _date_time_only,
    FieldType.DATE_ONLY: _date_only,
}


def coercer(field_type: FieldType, *, allow_null: bool, fields: FieldSpec | None = None) -> Coerce:
    """The coercion of one variable's value (not None: the caller applies the null rules).

    Scalar lists drop null items when nulls are allowed and refuse them otherwise; object lists
    check every item against the fields of the sample's first item (`fields`).
    """
    scalar = _SCALARS.get(field_type)
    if scalar is not None:
        return scalar
    item_type = field_type.item_type
    if item_type is not None:
        return _list_of(_SCALARS[item_type], allow_null)
    if field_type is FieldType.LIST_OBJECT and fields is not None:
        return _list_of(_object_item(fields, allow_null), allow_null)
    raise ValueError(f"a {field_type.value} field cannot be variable")


def _list_of(item: Coerce, allow_null: bool) -> Coerce:
    def coerce(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise InputError(path, f"expected a list, got {_kind(value)}")
        out = []
        for index, element in enumerate(value):
            if element is None:
                if allow_null:
                    continue  # reference §4: nulls inside arrays are dropped
                raise InputError(f"{path}[{index}]", "null is not allowed (allowNull is off)")
            out.append(item(element, f"{path}[{index}]"))
        return out

    return coerce


def _object_item(spec: FieldSpec, allow_null: bool) -> Coerce:
    """One object of an object list: exactly the sample's fields, each of its type."""
    # (name, coercion, the value sent when the item leaves it out or null under allowNull)
    children: list[tuple[str, Coerce, Any]] = []
    for child in spec.children:
        if child.type is FieldType.OBJECT:
            children.append((child.name, _object_item(child, allow_null), None))
        elif child.type is FieldType.LIST_ANY:
            children.append((child.name, _any_json, []))
        else:
            convert = coercer(child.type, allow_null=allow_null, fields=child)
            children.append((child.name, convert, [] if child.type.is_list else None))
    names = frozenset(name for name, _, _ in children)

    def coerce(value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise InputError(path, f"expected an object, got {_kind(value)}")
        if not value.keys() <= names:
            unknown = sorted(str(k) for k in value.keys() - names)
            raise InputError(f"{path}.{unknown[0]}", "unknown field")
        out: dict[str, Any] = {}
        for name, convert, null_value in children:
            element = value.get(name, _MISSING)
            if element is None or element is _MISSING:
                if not allow_null:
                    what = "is missing" if element is _MISSING else "is null"
                    raise InputError(f"{path}.{name}", f"{what} (allowNull is off)")
                out[name] = null_value
                continue
            out[name] = convert(element, f"{path}.{name}")
        return out

    return coerce


def _any_json(value: Any, path: str) -> Any:
    return value


Build = Callable[[Mapping[str, Any]], Any]

# The values a coercion gives back unchanged, as a test in the generated builder: such a value
# skips the call (~700 instructions for an integer, callgrind).
_KEPT_AS_IS: Final[dict[FieldType, str]] = {
    FieldType.STRING: "type(value) is str",
    FieldType.BOOLEAN: "type(value) is bool",
    FieldType.INTEGER: "type(value) is int and _INT64_MIN <= value <= _INT64_MAX",
    FieldType.DECIMAL: "type(value) is float and _isfinite(value)",
}


class _Leaf:
    """One variable of the body: where it is read, its coercion and its null rules (reference §4)."""

    __slots__ = ("convert", "null_value", "optional", "path")

    def __init__(self, variable: VariableSpec, allow_null: bool) -> None:
        self.path = variable.path
        self.convert = coercer(variable.type, allow_null=allow_null, fields=variable.field)
        self.optional = variable.optional
        self.null_value: Any = [] if variable.type.is_list else None  # a null array is sent as []

    def absent(self, value: Any, allow_null: bool) -> Any:
        """The value sent for a variable missing from the params (`_MISSING`) or null."""
        if value is _MISSING:
            if not self.optional:
                raise InputError(self.path, MISSING_VARIABLE)
            return None if allow_null else _OMIT  # left out: null, or not sent at all
        if allow_null:
            return self.null_value
        if self.optional:
            return _OMIT
        raise InputError(self.path, "null is not allowed (allowNull is off)")


def _body_builder(
    spec: FieldSpec, variables: Mapping[str, VariableSpec], allow_null: bool
) -> tuple[str, dict[str, Any]] | None:
    """The text of a builder of the object at `spec` and the namespace it runs in, or None when
    nothing below it is variable (the sample value is then sent as is, shared between calls:
    nothing mutates it).

    The builder is generated, one statement per field and objects inline, as dataclasses
    generates `__init__`: a function per object looping over its fields read from tuples took
    ~13,000 instructions for the bench's body against ~7,700 (callgrind). Its text holds only
    names made here; keys, paths and coercions are values of its namespace, never text of the
    action, so actions whose bodies have the same shape share its compiled code."""
    namespace: dict[str, Any] = {
        "_MISSING": _MISSING,
        "_absent": _absent,
        "_allow_null": allow_null,
        "_INT64_MIN": INT64_MIN,
        "_INT64_MAX": INT64_MAX,
        "_isfinite": math.isfinite,
    }
    numbers = itertools.count()

    def fill(spec: FieldSpec, out: str) -> list[str]:
        """The statements making the object at `spec` in the local `out`; none when nothing
        below it is variable."""
        template: dict[str, Any] = {}
        lines: list[str] = []
        for child in spec.children:
            n = next(numbers)
            key = namespace[f"_key{n}"] = child.name
            template[key] = child.sample
            variable = variables.get(child.path)
            if variable is not None:
                template[key] = None
                lines += _variable_lines(n, _Leaf(variable, allow_null), variable.type, out, namespace)
            elif child.type is FieldType.OBJECT:
                nested = fill(child, f"out{n}")
                if nested:
                    lines += [*nested, f"{out}[_key{n}] = out{n}"]
        if not lines:
            return []
        namespace[f"_{out}"] = template
        return [f"{out} = _{out}.copy()  # keeps the sample's key order", *lines]

    lines = fill(spec, "out")
    if not lines:
        return None
    return "def build(params):\n    " + "\n    ".join([*lines, "return out"]) + "\n", namespace


@functools.lru_cache(maxsize=256)
def _compiled(text: str) -> CodeType:
    """A builder's text compiled (~280 µs): once for the actions whose bodies share a shape."""
    return compile(text, "<actionrt body builder>", "exec")


def _generated(text: str, namespace: dict[str, Any]) -> Build:
    exec(_compiled(text), namespace)  # the text holds names `_body_builder` made, nothing else
    build: Build = namespace["build"]
    return build


def _variable_lines(n: int, leaf: _Leaf, kind: FieldType, out: str, namespace: dict[str, Any]) -> list[str]:
    """The statements setting variable field `n` of the object in the local `out`."""
    namespace[f"_leaf{n}"] = leaf
    namespace[f"_path{n}"] = leaf.path
    namespace[f"_convert{n}"] = leaf.convert
    absent = "value is _MISSING or value is None:"
    kept = _KEPT_AS_IS.get(kind)
    tests = [f"if {kept}:", f"    {out}[_key{n}] = value", f"elif {absent}"] if kept else [f"if {absent}"]
    return [
        f"value = params.get(_path{n}, _MISSING)",
        *tests,
        f"    _absent({out}, _key{n}, _leaf{n}.absent(value, _allow_null))",
        "else:",
        f"    {out}[_key{n}] = _convert{n}(value, _path{n})",
    ]


def _absent(out: dict[str, Any], key: str, value: Any) -> None:
    """Send `value` for a variable missing or null, or leave its key out (`_OMIT`)."""
    if value is _OMIT:
        del out[key]
    else:
        out[key] = value


class CallBuilder:
    """One action's per-call building, compiled once when the runtime loads the action."""

    __slots__ = (
        "_body",
        "_body_text",
        "_constant_body",
        "_dynamic_path",
        "_encode",
        "_header_getters",
        "_headers",
        "_idempotency_header",
        "_query_getters",
        "_query_prefix",
        "_required_variables",
        "_url",
        "_var_headers",
        "_var_headers_folded",
        "_var_query",
        "_variable_names",
        "method",
    )

    def __init__(self, action: Action, secrets: SecretResolver | None = None) -> None:
        definition = action.definition
        endpoint = definition.endpoint
        secrets = secrets or SecretResolver()
        self.method = endpoint.method
        self._dynamic_path = endpoint.dynamicPath
        self._url = endpoint.url.rstrip("/") + "/" if endpoint.dynamicPath else endpoint.url

        headers: dict[str, str] = {}
        if endpoint.method in ("POST", "PUT"):
            headers["Content-Type"] = JSON_CONTENT_TYPE
        getters: list[tuple[str, Callable[[], str]]] = []
        var_headers: dict[str, bool] = {}
        for header in endpoint.headers:
            if header.variable:
                var_headers[header.name] = header.optional
            elif header.name.lower() == "content-type":
                headers.pop("Content-Type", None)
                headers[header.name] = header.value or JSON_CONTENT_TYPE
            elif header.value is not None and has_secrets(header.value):
                getters.append((header.name, secrets.compile(header.value)))
            elif header.value is not None:
                headers[header.name] = header.value
        self._headers = headers
        self._header_getters = tuple(getters)
        self._var_headers = var_headers
        self._var_headers_folded = {name.lower(): name for name in var_headers}
        self._idempotency_header = definition.idempotencyKey

        constant_pieces: list[str] = []
        query_getters: list[tuple[str, Callable[[], str]]] = []
        var_query: dict[str, bool] = {}
        for param in endpoint.queryParameters:
            if param.variable:
                var_query[param.name] = param.optional
            elif param.value is not None and has_secrets(param.value):
                query_getters.append((quote(param.name, safe=""), secrets.compile(param.value)))
            elif param.value is not None:
                constant_pieces.append(f"{quote(param.name, safe='')}={quote(param.value, safe='')}")
        self._query_prefix = "&".join(constant_pieces)
        self._query_getters = tuple(query_getters)
        self._var_query = var_query

        self._variable_names = frozenset(action.variables)
        self._required_variables = tuple(v.path for v in action.variables.values() if not v.optional)
        allow_null = definition.request.allowNull if definition.request else False
        root = action.request_fields
        self._body: Build | None = None
        self._body_text: tuple[str, dict[str, Any]] | None = None
        self._constant_body: bytes | None = None
        self._encode: Callable[[Any], bytes] = encode_json
        if root is not None and endpoint.method in ("POST", "PUT"):
            self._body_text = _body_builder(root, action.variables, allow_null)
            if self._body_text is None:
                self._constant_body = _encode_text(root.sample).encode()
            else:
                self._body = self._first_body
                if not _all_finite(root.sample):
                    # orjson writes NaN as null where `json` refuses it (the loader refuses such
                    # a sample: this keeps the refusal for a builder made without the loader).
                    self._encode = _encode_bytes

    def _first_body(self, params: Mapping[str, Any]) -> Any:
        """The body of the action's first call, through its builder compiled now: a runtime
        starting with thousands of actions compiles none (~280 µs each)."""
        assert self._body_text is not None
        self._body = body = _generated(*self._body_text)
        return body(params)

    def _every_missing(self, params: Mapping[str, Any]) -> InputError | None:
        """One error naming every required variable missing from `params`, when more than one
        is (the builder stops at the first; a caller fixes them all at once)."""
        missing = [path for path in self._required_variables if path not in params]
        if len(missing) < 2:
            return None
        return InputError(", ".join(missing), "required variables are missing")

    @property
    def variable_names(self) -> frozenset[str]:
        return self._variable_names

    def build(
        self,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        idempotency_key: str | None = None,
    ) -> PreparedCall:
        """The request of one call; `InputError` naming the field when an input is unusable.

        `idempotency_key` is the value of the action's `idempotencyKey` header (a fresh one per
        call when None): a queue passes one derived from the call, so redeliveries repeat it."""
        return PreparedCall(*self.parts(params, headers, query, path, idempotency_key))

    def parts(
        self,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[str, str, dict[str, str], bytes | None]:
        """`build()`'s `PreparedCall` as a plain tuple, for the engine: a named tuple made and
        read per call cost ~3,400 instructions more (callgrind, the bench's call on a canned
        transport)."""
        if type(params) is not dict and params is not None:  # dicts, the usual case, skip it
            _check_mapping("params", params)
        if type(headers) is not dict and headers is not None:
            _check_mapping("headers", headers)
        if type(query) is not dict and query is not None:
            _check_mapping("query", query)
        # -- body
        if params and not self._variable_names.issuperset(params):  # ~550 instructions less than keys() <=
            unknown = sorted(str(k) for k in params.keys() - self._variable_names)
            raise InputError(unknown[0], "unknown variable")
        body = self._body
        if body is not None:
            try:
                content: bytes | None = self._encode(body(params or {}))
            except InputError as exc:
                if not str(exc).endswith(MISSING_VARIABLE):
                    raise
                raise self._every_missing(params or {}) or exc from None
            except ValueError as exc:  # NaN in a constant, circular data
                raise InputError("request", f"payload is not valid JSON ({exc})") from None
        else:
            content = self._constant_body

        # -- URL
        if self._dynamic_path:
            if path is None:
                raise InputError("path", "this action needs a dynamic path")
            endpoint = self._url + _encode_path(path)
        elif path is not None and path != "":
            raise InputError("path", "this action has no dynamic path")
        else:
            endpoint = self._url
        query_string = (
            self._query_string(query)
            if (query or self._var_query or self._query_getters)
            else self._query_prefix
        )
        url = f"{endpoint}?{query_string}" if query_string else endpoint

        # -- headers
        out = self._headers.copy()
        for name, getter in self._header_getters:
            try:
                out[name] = getter()
            except MissingSecretError as exc:
                raise InputError(f"endpoint.headers.{name}", str(exc), "secret") from None
        if headers or self._var_headers:
            self._add_variable_headers(out, headers or {})
        key_header = self._idempotency_header
        if key_header is not None and key_header not in out:
            out[key_header] = idempotency_key or uuid.uuid4().hex
        return url, endpoint, out, content

    def _add_variable_headers(self, out: dict[str, str], given: Mapping[str, Any]) -> None:
        declared = self._var_headers
        seen = 0
        for name, value in given.items():
            canonical = name if name in declared else self._var_headers_folded.get(str(name).lower())
            if canonical is None:
                raise InputError(f"headers.{name}", "not a variable header of this action")
            if value is None:
                if not declared[canonical]:
                    raise InputError(f"headers.{canonical}", "required header is null")
                continue
            text = _header_text(value, canonical)
            out[canonical] = text
            seen += 1
        if seen < len(declared):
            for name, optional in declared.items():
                if not optional and name not in out:
                    raise InputError(f"headers.{name}", "required variable header is missing")

    def _query_string(self, given: Mapping[str, Any] | None) -> str:
        pieces = [self._query_prefix] if self._query_prefix else []
        for name, getter in self._query_getters:
            try:
                pieces.append(f"{name}={quote(getter(), safe='')}")
            except MissingSecretError as exc:
                raise InputError(f"endpoint.queryParameters.{name}", str(exc), "secret") from None
        declared = self._var_query
        given = given or {}
        for name, value in given.items():
            if name not in declared:
                raise InputError(f"query.{name}", "not a variable query parameter of this action")
            if value is None:
                if not declared[name]:
                    raise InputError(f"query.{name}", "required query parameter is null")
                continue
            pieces.append(f"{quote(name, safe='')}={quote(_query_text(value, name), safe='')}")
        for name, optional in declared.items():
            if not optional and given.get(name) is None:
                raise InputError(f"query.{name}", "required variable query parameter is missing")
        return "&".join(pieces)


def _encode_bytes(value: Any) -> bytes:
    return _encode_text(value).encode()


def _all_finite(value: Any) -> bool:
    """Whether no float in `value` (nested lists and dicts) is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_all_finite(item) for item in value)
    return True


def _check_mapping(group: str, given: Any) -> None:
    if not isinstance(given, Mapping):
        raise InputError(group, f"expected a mapping of names to values, got {_kind(given)}")


def _header_text(value: Any, name: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
    else:
        raise InputError(f"headers.{name}", f"expected a string, got {_kind(value)}")
    if _HEADER_CONTROL.search(text):
        raise InputError(f"headers.{name}", "value contains CR, LF or another control character")
    return text


def _query_text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InputError(f"query.{name}", f"expected a string, got {_kind(value)}")


def _encode_path(path: Any) -> str:
    """The dynamic path, each segment percent-encoded; `.`/`..` and empty segments refused."""
    if isinstance(path, int) and not isinstance(path, bool):
        path = str(path)
    if not isinstance(path, str):
        raise InputError("path", f"expected a string, got {_kind(path)}")
    if _HEADER_CONTROL.search(path):
        raise InputError("path", "contains a control character")
    segments = path.lstrip("/").split("/")
    if segments == [""]:
        raise InputError("path", "is empty")
    last = len(segments) - 1
    encoded = []
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            raise InputError("path", "'.' and '..' segments are not allowed")
        if not segment and index != last:  # a trailing '/' is kept, '//' is refused
            raise InputError("path", "has an empty segment ('//')")
        encoded.append(quote(segment, safe=_SEGMENT_SAFE))
    return "/".join(encoded)
