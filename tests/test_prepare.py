"""Per-call building: coercion, null rules, dynamic path, query and headers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from actionrt.definition import parse_action
from actionrt.payload import FieldType
from actionrt.plugins import Plugins
from actionrt.prepare import JSON_CONTENT_TYPE, CallBuilder, InputError, coercer
from actionrt.secrets import SecretResolver


class DictSecrets:
    name = "env"
    checkable = True

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def make_builder(plugins: Plugins, secrets: dict[str, str] | None = None, **fields: Any) -> CallBuilder:
    raw: dict[str, Any] = {
        "name": "a",
        "endpoint": {"url": "https://api.example.com/v1/loyalty", "method": "POST"},
    }
    raw.update(fields)
    action = parse_action(raw, source="a.yaml", plugins=plugins)
    resolver = SecretResolver({"env": DictSecrets(secrets or {})})
    return CallBuilder(action, resolver)


def body(call: Any) -> Any:
    return json.loads(call.content)


SAMPLE = {
    "customer": {"email": "ada@example.com", "points": 10, "vip": False},
    "source": "journeys",
}


def test_constants_come_from_the_sample_and_variables_are_filled(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        request={
            "sample": SAMPLE,
            "variables": {"customer.email": {"label": "E"}, "customer.points": {"label": "P"}},
        },
    )
    call = builder.build({"customer.email": "bob@example.com", "customer.points": "12"})
    assert body(call) == {
        "customer": {"email": "bob@example.com", "points": 12, "vip": False},
        "source": "journeys",
    }
    assert list(body(call)["customer"]) == ["email", "points", "vip"]  # sample order kept
    assert call.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert call.url == call.endpoint == "https://api.example.com/v1/loyalty"


def test_calls_do_not_share_or_change_the_sample(plugins: Plugins) -> None:
    builder = make_builder(
        plugins, request={"sample": SAMPLE, "variables": {"customer.points": {"label": "P"}}}
    )
    first = body(builder.build({"customer.points": 1}))
    second = body(builder.build({"customer.points": 2}))
    assert (first["customer"]["points"], second["customer"]["points"]) == (1, 2)
    assert SAMPLE["customer"]["points"] == 10  # type: ignore[index]


@pytest.mark.parametrize(
    ("field_type", "given", "sent"),
    [
        (FieldType.STRING, "x", "x"),
        (FieldType.STRING, 12, "12"),
        (FieldType.INTEGER, 12, 12),
        (FieldType.INTEGER, "12", 12),
        (FieldType.INTEGER, " -7 ", -7),
        (FieldType.INTEGER, 12.0, 12),
        (FieldType.INTEGER, Decimal("3"), 3),
        (FieldType.DECIMAL, 1, 1.0),
        (FieldType.DECIMAL, "1.5", 1.5),
        (FieldType.DECIMAL, "-2e3", -2000.0),
        (FieldType.BOOLEAN, True, True),
        (FieldType.BOOLEAN, "false", False),
        (FieldType.BOOLEAN, "TRUE", True),
        (FieldType.DATE_TIME, "2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z"),
        (FieldType.DATE_TIME, datetime(2026, 11, 27, 10, tzinfo=UTC), "2026-11-27T10:00:00+00:00"),
        (FieldType.DATE_TIME_ONLY, "2026-11-27T10:00:00", "2026-11-27T10:00:00"),
        (FieldType.DATE_TIME_ONLY, datetime(2026, 11, 27, 10), "2026-11-27T10:00:00"),
        (FieldType.DATE_ONLY, "2026-11-27", "2026-11-27"),
        (FieldType.DATE_ONLY, date(2026, 11, 27), "2026-11-27"),
        (FieldType.LIST_INTEGER, ["1", 2], [1, 2]),
        (FieldType.LIST_STRING, ("a", "b"), ["a", "b"]),
    ],
)
def test_values_are_coerced_to_their_declared_type(field_type: FieldType, given: Any, sent: Any) -> None:
    assert coercer(field_type, allow_null=False)(given, "f") == sent


@pytest.mark.parametrize(
    ("field_type", "given", "why"),
    [
        (FieldType.INTEGER, "twelve", "expected an integer"),
        (FieldType.INTEGER, True, "boolean"),
        (FieldType.INTEGER, 1.5, "fraction"),
        (FieldType.INTEGER, 2**63, "64-bit"),
        (FieldType.INTEGER, "1_000", "expected an integer"),
        (FieldType.DECIMAL, "nan", "not a number"),
        (FieldType.DECIMAL, float("inf"), "finite"),
        (FieldType.DECIMAL, False, "boolean"),
        (FieldType.BOOLEAN, 1, "expected a boolean"),
        (FieldType.BOOLEAN, "yes", "true or false"),
        (FieldType.STRING, True, "expected a string"),
        (FieldType.STRING, {"a": 1}, "expected a string"),
        (FieldType.DATE_TIME, "2026-11-27T10:00:00", "UTC offset"),
        (FieldType.DATE_TIME, "2026-11-27", "ISO-8601"),
        (FieldType.DATE_TIME, "tomorrow", "ISO-8601"),
        (FieldType.DATE_TIME_ONLY, "2026-11-27T10:00:00+02:00", "no UTC offset"),
        (FieldType.DATE_ONLY, "27/11/2026", "ISO-8601"),
        (FieldType.DATE_ONLY, datetime(2026, 11, 27), "date-time"),
        (FieldType.LIST_INTEGER, 5, "expected a list"),
        (FieldType.LIST_INTEGER, [1, "x"], "f[1]"),
        (FieldType.DECIMAL, 10**400, "finite"),
        (FieldType.INTEGER, "9" * 5000, "64-bit"),
        pytest.param(FieldType.STRING, 10**5000, "too many digits", id="string-huge-int"),
        (FieldType.DATE_TIME_ONLY, "tomorrow", "(2026-11-27T10:00:00)"),
    ],
)
def test_unusable_values_are_refused_naming_the_field(field_type: FieldType, given: Any, why: str) -> None:
    with pytest.raises(InputError) as caught:
        coercer(field_type, allow_null=False)(given, "f")
    assert str(caught.value).startswith("f")
    assert why in str(caught.value)


def test_a_refusal_never_quotes_the_value(plugins: Plugins) -> None:
    builder = make_builder(
        plugins, request={"sample": SAMPLE, "variables": {"customer.points": {"label": "P"}}}
    )
    with pytest.raises(InputError) as caught:
        builder.build({"customer.points": "ada@example.com"})
    assert caught.value.field == "customer.points"
    assert "ada@example.com" not in str(caught.value)


def test_missing_required_and_unknown_variables_are_refused(plugins: Plugins) -> None:
    builder = make_builder(
        plugins, request={"sample": SAMPLE, "variables": {"customer.email": {"label": "E"}}}
    )
    with pytest.raises(InputError, match=r"^customer\.email: required variable is missing"):
        builder.build({})
    with pytest.raises(InputError, match=r"^customer\.emial: unknown variable"):
        builder.build({"customer.email": "a@b.c", "customer.emial": "x"})


NULL_SAMPLE = {"name": "ada", "tags": ["a"], "scores": [1], "nick": "x"}
NULL_VARIABLES = {
    "name": {"label": "Name"},
    "tags": {"label": "Tags"},
    "scores": {"label": "Scores", "optional": True},
    "nick": {"label": "Nick", "optional": True},
}


def test_null_rules_with_allow_null(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        request={"sample": NULL_SAMPLE, "variables": NULL_VARIABLES, "allowNull": True},
    )
    sent = body(builder.build({"name": None, "tags": ["a", None, "b"], "scores": None}))
    # nulls sent as null; nulls inside arrays dropped; a null array is []; a left-out optional
    # field is null
    assert sent == {"name": None, "tags": ["a", "b"], "scores": [], "nick": None}


def test_null_rules_without_allow_null(plugins: Plugins) -> None:
    builder = make_builder(plugins, request={"sample": NULL_SAMPLE, "variables": NULL_VARIABLES})
    # optional fields left out (or null) are not sent at all
    assert body(builder.build({"name": "n", "tags": ["t"], "nick": None})) == {"name": "n", "tags": ["t"]}
    with pytest.raises(InputError, match=r"^name: null is not allowed"):
        builder.build({"name": None, "tags": []})
    with pytest.raises(InputError, match=r"^tags\[1\]: null is not allowed"):
        builder.build({"name": "n", "tags": ["a", None]})


CART = {"customerId": "c-1", "items": [{"sku": "S", "quantity": 1, "price": 9.5}]}


def test_object_collections_are_checked_item_by_item(plugins: Plugins) -> None:
    builder = make_builder(plugins, request={"sample": CART, "variables": {"items": {"label": "Items"}}})
    items = [{"sku": "A", "quantity": "2", "price": 1}, {"sku": "B", "quantity": 1, "price": 2.5}]
    assert body(builder.build({"items": items}))["items"] == [
        {"sku": "A", "quantity": 2, "price": 1.0},
        {"sku": "B", "quantity": 1, "price": 2.5},
    ]
    with pytest.raises(InputError, match=r"^items\[1\]\.quantity: expected an integer"):
        builder.build({"items": [items[0], {"sku": "B", "quantity": "x", "price": 1}]})
    with pytest.raises(InputError, match=r"^items\[0\]\.colour: unknown field"):
        builder.build({"items": [{**items[0], "colour": "red"}]})
    with pytest.raises(InputError, match=r"^items\[0\]\.price: is missing"):
        builder.build({"items": [{"sku": "A", "quantity": 1}]})
    with pytest.raises(InputError, match=r"^items\[0\]: expected an object"):
        builder.build({"items": ["A"]})


MIXED = {
    "first": "a",
    "customer": {"email": "ada@example.com", "ratio": 0.5, "vip": False, "points": 1},
    "last": True,
}


class Text(str):
    """A str subclass: sent as a plain string, like any value that is not exactly a str."""


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"customer.email": "x@y.z", "customer.vip": True}, {"email": "x@y.z", "vip": True}),
        ({"customer.email": Text("t@y.z"), "customer.vip": "false"}, {"email": "t@y.z", "vip": False}),
        ({"customer.ratio": 2, "customer.points": 3.0}, {"ratio": 2.0, "points": 3}),
    ],
)
def test_values_read_in_the_body_are_coerced_or_kept_by_type(
    plugins: Plugins, given: dict[str, Any], sent: dict[str, Any]
) -> None:
    variables = {p: {"label": p, "optional": True} for p in ("first", "last")}
    variables.update({f"customer.{k}": {"label": k, "optional": True} for k in MIXED["customer"]})
    builder = make_builder(plugins, request={"sample": MIXED, "variables": variables, "allowNull": False})
    content = builder.build(given).content
    assert content is not None
    built = json.loads(content)
    assert list(built) == [k for k in MIXED if k not in ("first", "last")]  # left out: not sent
    assert built["customer"] == sent and list(sent) == [k for k in MIXED["customer"] if k in sent]
    assert type(json.loads(content)["customer"].get("email", "")) is str


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_decimal_that_is_not_finite_is_refused(plugins: Plugins, bad: float) -> None:
    variables = {"customer.ratio": {"label": "Ratio"}}
    builder = make_builder(plugins, request={"sample": MIXED, "variables": variables})
    with pytest.raises(InputError, match=r"^customer\.ratio: expected a finite decimal"):
        builder.build({"customer.ratio": bad})


@pytest.mark.parametrize("edge", [2**63 - 1, -(2**63)])
def test_an_integer_at_the_64_bit_edges_is_sent_and_one_past_them_refused(
    plugins: Plugins, edge: int
) -> None:
    builder = make_builder(
        plugins, request={"sample": SAMPLE, "variables": {"customer.points": {"label": "P"}}}
    )
    assert body(builder.build({"customer.points": edge}))["customer"]["points"] == edge
    with pytest.raises(InputError, match=r"^customer\.points: integer out of the 64-bit range"):
        builder.build({"customer.points": edge + (1 if edge > 0 else -1)})


def test_the_first_unusable_value_in_the_samples_order_is_named(plugins: Plugins) -> None:
    variables = {p: {"label": p} for p in ("first", "customer.points", "last")}
    builder = make_builder(plugins, request={"sample": MIXED, "variables": variables})
    with pytest.raises(InputError, match=r"^customer\.points: expected an integer"):
        builder.build({"first": "a", "customer.points": "x", "last": 3})
    with pytest.raises(InputError, match=r"^first: expected a string"):
        builder.build({"first": [], "customer.points": "x", "last": 3})


def test_a_dynamic_path_is_joined_with_one_slash_and_encoded(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        endpoint={"url": "https://api.example.com/v1/", "method": "GET", "dynamicPath": True},
    )
    assert builder.build(path="ada/messages").url == "https://api.example.com/v1/ada/messages"
    assert builder.build(path="/ada").url == "https://api.example.com/v1/ada"
    assert builder.build(path="a b/c?d#e%2F").url == ("https://api.example.com/v1/a%20b/c%3Fd%23e%252F")
    assert builder.build(path="ada:send@x").url == "https://api.example.com/v1/ada:send@x"
    assert builder.build(path=42).url == "https://api.example.com/v1/42"  # type: ignore[arg-type]
    for escape in ("..", "a/../b", "./a", "a//b", "", "a\nb"):
        with pytest.raises(InputError, match=r"^path"):
            builder.build(path=escape)
    with pytest.raises(InputError, match="needs a dynamic path"):
        builder.build()


def test_a_static_url_takes_no_path(plugins: Plugins) -> None:
    builder = make_builder(plugins)
    with pytest.raises(InputError, match="no dynamic path"):
        builder.build(path="x")


def test_headers_constant_variable_and_injection(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        endpoint={
            "url": "https://api.example.com/v1/x",
            "method": "POST",
            "headers": [
                {"name": "x-api-version", "value": "2"},
                {"name": "x-request-id", "variable": True, "label": "Request"},
                {"name": "x-trace", "variable": True, "label": "Trace", "optional": True},
            ],
        },
    )
    call = builder.build(headers={"X-Request-Id": "r-1"})
    assert call.headers == {"Content-Type": JSON_CONTENT_TYPE, "x-api-version": "2", "x-request-id": "r-1"}
    with pytest.raises(InputError, match=r"^headers\.x-request-id: value contains CR"):
        builder.build(headers={"x-request-id": "r\r\nX-Evil: 1"})
    with pytest.raises(InputError, match=r"^headers\.x-request-id: required"):
        builder.build(headers={"x-trace": "t"})
    with pytest.raises(InputError, match=r"^headers\.x-other: not a variable header"):
        builder.build(headers={"x-request-id": "r", "x-other": "o"})


def test_constant_values_read_secrets_at_call_time(plugins: Plugins) -> None:
    values = {"API_KEY": "k1"}
    builder = make_builder(
        plugins,
        secrets=values,
        endpoint={
            "url": "https://api.example.com/v1/x",
            "method": "GET",
            "headers": [{"name": "x-key", "value": "{{ secrets.API_KEY }}"}],
            "queryParameters": [{"name": "key", "value": "{{ secrets.API_KEY }}"}],
        },
    )
    call = builder.build()
    assert call.headers["x-key"] == "k1" and call.url.endswith("?key=k1")
    assert "Content-Type" not in call.headers and call.content is None  # a GET has no body
    values["API_KEY"] = "k2"  # rotated
    assert builder.build().headers["x-key"] == "k2"
    del values["API_KEY"]
    with pytest.raises(InputError, match=r"^endpoint\.(headers|queryParameters)\.") as caught:
        builder.build()
    assert caught.value.code == "secret"


def test_query_constant_and_variable_parameters_are_encoded(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        endpoint={
            "url": "https://api.example.com/v1/x",
            "method": "GET",
            "queryParameters": [
                {"name": "campaign", "value": "welcome back"},
                {"name": "locale", "variable": True, "label": "Locale"},
                {"name": "page", "variable": True, "label": "Page", "optional": True},
            ],
        },
    )
    assert builder.build(query={"locale": "fr&x=1"}).url == (
        "https://api.example.com/v1/x?campaign=welcome%20back&locale=fr%26x%3D1"
    )
    assert builder.build(query={"locale": "fr", "page": 2}).url.endswith("&page=2")
    assert builder.build(query={"locale": "fr"}).endpoint == "https://api.example.com/v1/x"
    with pytest.raises(InputError, match=r"^query\.locale: required"):
        builder.build()
    with pytest.raises(InputError, match=r"^query\.nope"):
        builder.build(query={"locale": "fr", "nope": 1})


def test_a_declared_content_type_replaces_the_default(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        endpoint={
            "url": "https://api.example.com/v1/x",
            "method": "POST",
            "headers": [{"name": "content-type", "value": "application/vnd.api+json"}],
        },
        request={"sample": {"a": 1}},
    )
    call = builder.build()
    assert call.headers == {"content-type": "application/vnd.api+json"}
    assert call.content == b'{"a":1}'


def test_the_idempotency_key_is_new_for_each_call(plugins: Plugins) -> None:
    builder = make_builder(plugins, idempotencyKey="Idempotency-Key")
    first = builder.build().headers["Idempotency-Key"]
    second = builder.build().headers["Idempotency-Key"]
    assert first != second and len(first) == 32


def test_a_queued_call_gives_its_own_idempotency_key_each_delivery(plugins: Plugins) -> None:
    builder = make_builder(plugins, idempotencyKey="Idempotency-Key")
    assert builder.build(idempotency_key="call-7").headers["Idempotency-Key"] == "call-7"
    assert builder.build(idempotency_key="call-7").headers["Idempotency-Key"] == "call-7"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"params": [("customer.points", 1)]}, "params: expected a mapping of names to values, got a list"),
        ({"headers": "x-request-id"}, "headers: expected a mapping of names to values, got a string"),
        ({"query": ["locale"]}, "query: expected a mapping of names to values, got a list"),
    ],
)
def test_inputs_that_are_not_mappings_are_refused_by_name(plugins: Plugins, given: Any, why: str) -> None:
    builder = make_builder(
        plugins, request={"sample": SAMPLE, "variables": {"customer.points": {"label": "P"}}}
    )
    with pytest.raises(InputError, match=why):
        builder.build(**given)


def test_keys_that_read_as_code_are_only_keys(plugins: Plugins) -> None:
    # The body's builder is generated: the sample's keys and paths are values it holds, never
    # text it runs, whatever they spell.
    key = 'x"]\n    raise SystemExit("injected")  #'
    sample = {key: "constant", "order": {key: 1, "id": "o-1"}}
    builder = make_builder(plugins, request={"sample": sample, "variables": {"order.id": {"label": "Order"}}})
    call = builder.build({"order.id": "o-2"})
    assert list(json.loads(call.content)) == [key, "order"]
    assert body(call) == {key: "constant", "order": {key: 1, "id": "o-2"}}


def test_the_engines_plain_tuple_holds_the_prepared_calls_fields(plugins: Plugins) -> None:
    builder = make_builder(
        plugins,
        request={"sample": SAMPLE, "variables": {"customer.email": {"label": "E"}}},
        idempotencyKey="Idempotency-Key",
    )
    given = ({"customer.email": "bob@example.com"}, None, None, None, "key-1")
    url, endpoint, headers, content = builder.parts(*given)
    assert builder.build(*given) == (url, endpoint, headers, content)
    assert (
        headers["Idempotency-Key"] == "key-1"
        and body(builder.build(*given))["customer"]["email"] == "bob@example.com"
    )


def test_a_body_builder_is_compiled_at_first_call_once_per_shape(plugins: Plugins) -> None:
    from actionrt.prepare import _compiled

    _compiled.cache_clear()
    first, second = (
        make_builder(
            plugins, request={"sample": {key: {"id": "x"}}, "variables": {f"{key}.id": {"label": "Id"}}}
        )
        for key in ("order", "basket")
    )
    assert _compiled.cache_info().currsize == 0  # a runtime's start compiles nothing
    assert body(first.build({"order.id": "o-1"})) == {"order": {"id": "o-1"}}
    assert body(second.build({"basket.id": "b-1"})) == {"basket": {"id": "b-1"}}
    assert body(first.build({"order.id": "o-2"})) == {"order": {"id": "o-2"}}
    assert _compiled.cache_info().misses == 1  # the two bodies have the same shape
