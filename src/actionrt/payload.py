"""Payload fields: the typed field tree inferred from an example JSON payload, and its variables.

Used for the request sample (constants and variables) and the response / error-response samples
(the fields a journey can read). Inference happens once, at load.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from actionrt.errors import Problem


class FieldType(StrEnum):
    """The field types of the reference behaviour (and `object` for nested objects)."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE_TIME = "dateTime"
    DATE_TIME_ONLY = "dateTimeOnly"
    DATE_ONLY = "dateOnly"
    OBJECT = "object"
    LIST_STRING = "listString"
    LIST_INTEGER = "listInteger"
    LIST_DECIMAL = "listDecimal"
    LIST_BOOLEAN = "listBoolean"
    LIST_DATE_TIME = "listDateTime"
    LIST_DATE_TIME_ONLY = "listDateTimeOnly"
    LIST_DATE_ONLY = "listDateOnly"
    LIST_OBJECT = "listObject"
    LIST_ANY = "listAny"

    @property
    def is_list(self) -> bool:
        return self.value.startswith("list")

    @property
    def item_type(self) -> FieldType | None:
        """The element type of a scalar list (`listInteger` -> `integer`), else None."""
        if not self.is_list or self in (FieldType.LIST_OBJECT, FieldType.LIST_ANY):
            return None
        name = self.value[4:]
        return FieldType(name[0].lower() + name[1:])


SCALAR_TYPES = frozenset(
    {
        FieldType.STRING,
        FieldType.INTEGER,
        FieldType.DECIMAL,
        FieldType.BOOLEAN,
        FieldType.DATE_TIME,
        FieldType.DATE_TIME_ONLY,
        FieldType.DATE_ONLY,
    }
)
SCALAR_LIST_TYPES = frozenset(
    t for t in FieldType if t.is_list and t not in (FieldType.LIST_OBJECT, FieldType.LIST_ANY)
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a sample: dotted path, inferred type, example value, and sub-fields.

    `children` holds an object's fields, or, for `listObject`, the fields of its first element.
    """

    name: str
    path: str
    type: FieldType
    sample: Any
    children: tuple[FieldSpec, ...] = ()

    def walk(self) -> Iterator[FieldSpec]:
        """This field and every field below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, path: str) -> FieldSpec | None:
        """The field at a dotted path below this one (the root has path "")."""
        node: FieldSpec | None = self
        for part in path.split("."):
            if node is None or node.type is not FieldType.OBJECT:
                return None
            node = next((c for c in node.children if c.name == part), None)
        return node


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """A request field switched to Variable: the journey supplies its value per call."""

    path: str
    label: str
    type: FieldType
    optional: bool
    field: FieldSpec


# A sample's constants are sent as JSON, which has no NaN or Infinity (YAML `.nan`, JSON `1e999`).
NOT_FINITE = "numbers must be finite: JSON has no NaN or Infinity"


def _scalar_type(value: Any) -> FieldType | None:
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.DECIMAL
    if isinstance(value, str) or value is None:
        return FieldType.STRING
    return None


_LIST_OF = {
    FieldType.STRING: FieldType.LIST_STRING,
    FieldType.INTEGER: FieldType.LIST_INTEGER,
    FieldType.DECIMAL: FieldType.LIST_DECIMAL,
    FieldType.BOOLEAN: FieldType.LIST_BOOLEAN,
    FieldType.DATE_TIME: FieldType.LIST_DATE_TIME,
    FieldType.DATE_TIME_ONLY: FieldType.LIST_DATE_TIME_ONLY,
    FieldType.DATE_ONLY: FieldType.LIST_DATE_ONLY,
}


class _Inference:
    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        full = f"{self.where}.{path}" if path else self.where
        self.problems.append(Problem(self.source, full, message))

    def object(self, name: str, path: str, value: dict[str, Any]) -> FieldSpec:
        children = []
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if "." in key:
                self.problem(child_path, "field names must not contain '.'")
            elif key.startswith("$"):
                self.problem(child_path, "field names must not start with '$'")
            elif not key:
                self.problem(child_path, "field names must not be empty")
            children.append(self.field(key, child_path, child))
        return FieldSpec(name, path, FieldType.OBJECT, value, tuple(children))

    def field(self, name: str, path: str, value: Any) -> FieldSpec:
        if isinstance(value, dict):
            return self.object(name, path, value)
        if isinstance(value, list):
            return self.array(name, path, value)
        scalar = _scalar_type(value)
        if scalar is None:  # pragma: no cover - JSON and YAML give nothing else but dates
            self.problem(path, f"unsupported value of type {type(value).__name__}")
            return FieldSpec(name, path, FieldType.STRING, value)
        if scalar is FieldType.DECIMAL and not math.isfinite(value):
            self.problem(path, NOT_FINITE)
        return FieldSpec(name, path, scalar, value)

    def array(self, name: str, path: str, value: list[Any]) -> FieldSpec:
        if not value:
            self.problem(path, "an empty example array gives no type: put one example element")
            return FieldSpec(name, path, FieldType.LIST_ANY, value)
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            self.problem(path, NOT_FINITE)
        if all(isinstance(v, dict) for v in value):
            first = self.object(name, path, value[0])
            return FieldSpec(name, path, FieldType.LIST_OBJECT, value, first.children)
        types = {_scalar_type(v) for v in value if v is not None}
        if None in types or not types:
            return FieldSpec(name, path, FieldType.LIST_ANY, value)
        if types == {FieldType.INTEGER, FieldType.DECIMAL}:
            types = {FieldType.DECIMAL}
        item = types.pop() if len(types) == 1 else None
        if item is None:
            return FieldSpec(name, path, FieldType.LIST_ANY, value)
        return FieldSpec(name, path, _LIST_OF[item], value)


def infer_fields(sample: Any, *, source: str, where: str) -> tuple[FieldSpec, list[Problem]]:
    """Infer the typed field tree of an example payload (a JSON object).

    `where` is the field path of the sample in the action file, used in problem messages.
    """
    inference = _Inference(source, where)
    if not isinstance(sample, dict):
        inference.problem("", "the example payload must be a JSON object")
        return FieldSpec("", "", FieldType.OBJECT, {}), inference.problems
    root = inference.object("", "", sample)
    return root, inference.problems


def _compatible(inferred: FieldType, declared: FieldType) -> bool:
    if inferred in SCALAR_TYPES:
        return declared in SCALAR_TYPES
    if inferred in SCALAR_LIST_TYPES:
        return declared in SCALAR_LIST_TYPES
    return inferred == declared


def resolve_variable(
    root: FieldSpec,
    path: str,
    *,
    label: str,
    optional: bool,
    declared: FieldType | None,
) -> VariableSpec | str:
    """The variable at `path`, or the reason it cannot be one."""
    field = root.find(path)
    if field is None:
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = root.find(".".join(parts[:i]))
            if prefix is not None and prefix.type is FieldType.LIST_OBJECT:
                return (
                    "fields inside an object array can't be variable on their own: "
                    f"make the array {prefix.path!r} variable"
                )
        return "no such field in request.sample"
    if field.type is FieldType.OBJECT:
        return "an object can't be variable: make its fields variable"
    if field.type is FieldType.LIST_ANY:
        return "a listAny field (mixed or nested arrays) can stay constant but can't be variable"
    if field.type is FieldType.LIST_OBJECT and any(c.type.is_list for c in _descendants(field)):
        return "only bottom-level arrays can be variable: this array holds arrays"
    field_type: FieldType = field.type
    if declared is not None:
        if not _compatible(field.type, declared):
            article = "an" if field.type.value[0] in "aeiou" else "a"
            return f"type {declared.value} does not fit the example value ({article} {field.type.value})"
        field_type = declared
    return VariableSpec(path, label, field_type, optional, field)


def _descendants(field: FieldSpec) -> Iterator[FieldSpec]:
    for child in field.children:
        yield from child.walk()
