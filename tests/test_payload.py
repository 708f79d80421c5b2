"""Type inference from example payloads, and which fields may be variable."""

from __future__ import annotations

from actionrt.payload import FieldType, infer_fields, resolve_variable


def infer(sample):
    root, problems = infer_fields(sample, source="f.yaml", where="request.sample")
    assert problems == []
    return root


def test_scalars_and_nested_objects_get_their_types():
    root = infer({"s": "x", "i": 1, "d": 1.5, "b": True, "o": {"n": None}})
    types = {f.path: f.type for f in root.walk() if f.path}
    assert types == {
        "s": FieldType.STRING,
        "i": FieldType.INTEGER,
        "d": FieldType.DECIMAL,
        "b": FieldType.BOOLEAN,
        "o": FieldType.OBJECT,
        "o.n": FieldType.STRING,
    }


def test_lists_are_typed_by_their_elements():
    root = infer(
        {
            "ls": ["a"],
            "li": [1, 2],
            "ld": [1, 2.5],
            "lb": [True],
            "mixed": [1, "a"],
            "nested": [[1]],
            "objs": [{"sku": "a", "qty": 1}, {"other": True}],
        }
    )
    get = root.find
    assert get("ls").type is FieldType.LIST_STRING
    assert get("li").type is FieldType.LIST_INTEGER
    assert get("ld").type is FieldType.LIST_DECIMAL
    assert get("lb").type is FieldType.LIST_BOOLEAN
    assert get("mixed").type is FieldType.LIST_ANY
    assert get("nested").type is FieldType.LIST_ANY
    objs = get("objs")
    assert objs.type is FieldType.LIST_OBJECT
    # an object array takes its fields from its first element only
    assert [c.name for c in objs.children] == ["sku", "qty"]


def test_bad_field_names_and_empty_arrays_are_reported_with_their_path():
    _, problems = infer_fields(
        {"a.b": 1, "$x": 2, "o": {"list": []}}, source="f.yaml", where="request.sample"
    )
    assert [str(p) for p in problems] == [
        "f.yaml: request.sample.a.b: field names must not contain '.'",
        "f.yaml: request.sample.$x: field names must not start with '$'",
        "f.yaml: request.sample.o.list: an empty example array gives no type: put one example element",
    ]


def test_numbers_json_cannot_carry_are_refused_in_samples():
    _, problems = infer_fields(
        {"n": float("nan"), "o": {"i": float("inf")}, "l": [1.5, float("-inf")], "ok": 1e300},
        source="f.yaml",
        where="request.sample",
    )
    assert [str(p) for p in problems] == [
        "f.yaml: request.sample.n: numbers must be finite: JSON has no NaN or Infinity",
        "f.yaml: request.sample.o.i: numbers must be finite: JSON has no NaN or Infinity",
        "f.yaml: request.sample.l: numbers must be finite: JSON has no NaN or Infinity",
    ]


def test_a_type_that_does_not_fit_names_the_inferred_one():
    root = infer({"n": 1})
    assert resolve_variable(root, "n", label="N", optional=False, declared=FieldType.LIST_STRING) == (
        "type listString does not fit the example value (an integer)"
    )


def test_variables_resolve_with_type_overrides():
    root = infer({"when": "2026-01-01T00:00:00Z", "tags": ["a"], "items": [{"sku": "a"}]})
    when = resolve_variable(root, "when", label="When", optional=False, declared=FieldType.DATE_TIME)
    assert not isinstance(when, str) and when.type is FieldType.DATE_TIME
    tags = resolve_variable(root, "tags", label="Tags", optional=True, declared=None)
    assert not isinstance(tags, str) and tags.type is FieldType.LIST_STRING and tags.optional
    items = resolve_variable(root, "items", label="Items", optional=False, declared=None)
    assert not isinstance(items, str) and items.type is FieldType.LIST_OBJECT


def test_variables_that_cannot_be():
    root = infer({"o": {"x": 1}, "mixed": [1, "a"], "deep": [{"l": [1]}], "items": [{"sku": "a"}]})
    assert "object can't be variable" in str(
        resolve_variable(root, "o", label="O", optional=False, declared=None)
    )
    assert "listAny" in str(resolve_variable(root, "mixed", label="M", optional=False, declared=None))
    assert "bottom-level" in str(resolve_variable(root, "deep", label="D", optional=False, declared=None))
    assert "inside an object array" in str(
        resolve_variable(root, "items.sku", label="S", optional=False, declared=None)
    )
    assert "does not fit" in str(
        resolve_variable(root, "o.x", label="X", optional=False, declared=FieldType.LIST_STRING)
    )


def test_item_type_of_lists():
    assert FieldType.LIST_DATE_TIME_ONLY.item_type is FieldType.DATE_TIME_ONLY
    assert FieldType.LIST_OBJECT.item_type is None
    assert FieldType.STRING.item_type is None
