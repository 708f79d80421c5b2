"""docs/plugins/api.md is generated from the code: every type a plugin touches, with its signature,
fields and methods. The test fails when the code and the page differ; to refresh the page run

    uv run python tests/test_plugins_reference.py
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import pydantic

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "plugins" / "api.md"

# (section title, the dotted names it documents): everything the public plugin API offers.
SECTIONS: list[tuple[str, list[str]]] = [
    (
        "Versions and hooks",
        [
            "actionrt.PLUGIN_API",
            "actionrt.plugins.PLUGIN_API_ATTRIBUTE",
            "actionrt.hookimpl",
            "actionrt.hookspecs.Register",
            "actionrt.hookspecs.RegisterNamed",
        ],
    ),
    (
        "Connectors",
        [
            "actionrt.connectors.Connector",
            "actionrt.connectors.TemplateConnector",
            "actionrt.connectors.ConnectorSettings",
            "actionrt.connectors.RequestShaper",
            "actionrt.connectors.ResponseClassifier",
            "actionrt.connectors.Verdict",
            "actionrt.connectors.error_object",
            "actionrt.connectors.encode_form",
            "actionrt.connectors.merge_action",
        ],
    ),
    (
        "Requests and answers",
        ["actionrt.http.HttpRequest", "actionrt.http.HttpResponse", "actionrt.retry.retry_after_seconds"],
    ),
    (
        "Authentication schemes",
        [
            "actionrt.auth.base.AuthScheme",
            "actionrt.auth.base.Authenticator",
            "actionrt.auth.base.AuthCheck",
            "actionrt.auth.base.AuthenticationError",
            "actionrt.auth.models.AuthConfig",
            "actionrt.auth.tokens.TokenAuthenticator",
        ],
    ),
    ("Secrets and events", ["actionrt.secrets.SecretProvider", "actionrt.events.EventSink"]),
    ("Errors", ["actionrt.errors.ValidationError", "actionrt.errors.Problem"]),
    (
        "The test kit (actionrt.testing)",
        [
            "actionrt.testing.RuntimeFactory",
            "actionrt.testing.assert_request_sent",
            "actionrt.testing.form_fields",
            "actionrt.testing.http_response",
            "actionrt.testing.replay",
            "actionrt.testing.DictSecrets",
        ],
    ),
]

HEADER = """# Plugin API reference

Every type, function and constant a plugin touches, generated from the code (a test keeps this
page and the code identical). Anything not listed here is internal and may change in any release;
what is listed follows the [versioning promise](versioning.md). The hooks themselves are in
[hooks.md](hooks.md); a walk-through is in [writing-a-connector.md](writing-a-connector.md).
"""


def resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _clean(text: str) -> str:
    # Hide memory addresses and the noise of `from __future__ import annotations` strings.
    return re.sub(r" at 0x[0-9a-f]+", "", text).replace("'", "")


def _signature(obj: Any) -> str:
    try:
        return _clean(str(inspect.signature(obj)))
    except (TypeError, ValueError):
        return "(...)"


def _members(cls: type) -> list[str]:
    lines = []
    if dataclasses.is_dataclass(cls):
        for item in dataclasses.fields(cls):
            lines.append(f"- field `{item.name}: {_clean(str(item.type))}`")
    elif isinstance(cls, type) and issubclass(cls, pydantic.BaseModel) and cls.model_fields:
        for name, info in cls.model_fields.items():
            lines.append(f"- field `{name}: {_clean(str(info.annotation))}`")
    else:
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            if not name.startswith("_"):
                lines.append(f"- attribute `{name}: {_clean(str(annotation))}`")
    own = [
        (name, value)
        for name, value in vars(cls).items()
        if (not name.startswith("_") or name == "__call__")
        and (inspect.isfunction(value) or isinstance(value, classmethod | property))
    ]
    for name, value in own:
        function = value.__func__ if isinstance(value, classmethod) else value
        if isinstance(value, property):
            summary = (inspect.getdoc(value) or "").split("\n")[0]
            lines.append(f"- property `{name}`" + (f": {summary}" if summary else ""))
            continue
        summary = (inspect.getdoc(function) or "").split("\n")[0]
        kind = "classmethod " if isinstance(value, classmethod) else ""
        lines.append(f"- {kind}`{name}{_signature(function)}`" + (f": {summary}" if summary else ""))
    return lines


def entry(dotted: str) -> str:
    obj = resolve(dotted)
    if isinstance(obj, tuple | str):  # a constant
        what = {
            "actionrt.PLUGIN_API": "the plugin API version (major, minor).",
            "actionrt.plugins.PLUGIN_API_ATTRIBUTE": "the name of a plugin's declaration of the plugin "
            'API versions it supports: a version specifier string, e.g. `ACTIONRT_PLUGIN_API = ">=1.0,<2"`.',
        }[dotted]
        return f"### `{dotted}`\n\n`{dotted} = {obj!r}`: {what}\n"
    if isinstance(obj, type):
        bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
        head = f"### class `{dotted}`" + (f" ({bases})" if bases else "")
        doc = inspect.getdoc(obj) or ""
        members = _members(obj)
        return "\n".join([head, "", doc, *(["", *members] if members else []), ""])
    if callable(obj) and not inspect.isfunction(obj):  # a marker object (hookimpl)
        return f"### `{dotted}`\n\n{inspect.getdoc(type(obj)) or ''}\n"
    return f"### `{dotted}{_signature(obj)}`\n\n{inspect.getdoc(obj) or ''}\n"


def render() -> str:
    parts = [HEADER]
    for title, names in SECTIONS:
        parts.append(f"## {title}\n")
        parts.extend(entry(name) for name in names)
    return "\n".join(parts).rstrip() + "\n"


def test_the_reference_page_is_the_code() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/plugins/api.md is out of date: run `uv run python tests/test_plugins_reference.py`"
    )


def test_every_public_name_of_the_connector_module_is_documented_or_internal() -> None:
    import actionrt.connectors as connectors

    documented = {name.rpartition(".")[2] for _, names in SECTIONS for name in names}
    internal = {
        "CallPathHooks",
        "NO_HOOKS",
        "CALL_PATH_METHODS",
        "CONNECTOR_KEYS",
        "NAMED_LISTS",
        "call_path_hooks",
        "call_path_problems",
        "as_verdict",
        "settings_problems",
        "log",
        "Classify",
        "Shape",
        "ClassifierAnswer",
        "RetryAdvice",
        "BodyEncoding",
        "FORM_CONTENT_TYPE",
    }
    public = {
        name
        for name, value in vars(connectors).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "actionrt.connectors") == "actionrt.connectors"
        and not inspect.ismodule(value)
    }
    assert public - documented - internal == set()


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {PAGE}\n")
