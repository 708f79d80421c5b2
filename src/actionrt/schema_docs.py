"""The field-by-field reference of the action file, rendered as Markdown from its JSON Schema.

`actionrt schema --markdown > docs/action-file-reference.md` regenerates the committed page; a
test fails when the page and the model drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from actionrt.definition import action_json_schema


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"[{prop['$ref'].rsplit('/', 1)[-1]}](#{prop['$ref'].rsplit('/', 1)[-1].lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"] if p.get("type") != "null")
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        extra = prop["additionalProperties"]
        return f"map of {_type_of(extra) if isinstance(extra, dict) else 'any'}"
    return str(kind)


def _limits(prop: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("pattern", "pattern"),
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "min length"),
    ):
        if key in prop:
            parts.append(f"{label} `{prop[key]}`")
    return ", ".join(parts)


def _section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if schema.get("description"):
        lines += [" ".join(schema["description"].split()), ""]
    lines += ["| field | type | required | default | rules |", "|---|---|---|---|---|"]
    required = set(schema.get("required", ()))
    for field, prop in schema.get("properties", {}).items():
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        lines.append(
            f"| `{field}` | {_type_of(prop)} | {'yes' if field in required else ''} "
            f"| {default} | {_limits(prop)} |"
        )
    return [*lines, ""]


def render_reference() -> str:
    """The Markdown page: one table per object of the schema, the action first."""
    schema = action_json_schema()
    lines = [
        "# Action file reference",
        "",
        "Generated from the model by `actionrt schema --markdown`; do not edit by hand.",
        "The rules a schema can't express (URL policy, header names, payload inference, variables)",
        "are in [action-file.md](action-file.md).",
        "",
    ]
    lines += _section("ActionDefinition", schema)
    for name, definition in sorted(schema.get("$defs", {}).items()):
        if "properties" in definition:
            lines += _section(name, definition)
        elif "enum" in definition:
            values = ", ".join(f"`{v}`" for v in definition["enum"])
            lines += [f"## {name}", "", values, ""]
    return "\n".join(lines).rstrip() + "\n"
