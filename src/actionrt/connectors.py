"""The connector interface: a named bundle of action templates plus API-specific code.

An action file says `connector: <name>` and gives that connector's `settings`; at load time the
connector's `expand` turns it into a plain action definition, validated like a hand-written one.
Only APIs that need code add the optional call-path methods `shape_request` (hashing, signing,
batch limits) and `classify_response` (reading the API's own error bodies); the engine looks
them up once per action (`call_path_hooks`) and calls them as plain methods.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import pydantic
from pydantic import BaseModel, ConfigDict

from actionrt.errors import Problem, ValidationError
from actionrt.http import HttpRequest, HttpResponse

# Keys of a connector action that belong to the connector, not to the action definition.
CONNECTOR_KEYS = frozenset({"connector", "settings"})
# Lists merged by the `name` of their items rather than replaced.
NAMED_LISTS = frozenset({"headers", "queryParameters"})


class Connector(Protocol):
    """Turns `connector: <name>` + `settings` into a plain action definition, at load time.

    `expand(action)` receives the action file's dict (with `connector` and `settings`) and returns
    the dict of an ordinary action: endpoint, authentication, request sample and variables. The
    registry validates the result exactly like a hand-written action file and keeps
    `connector: <name>` in it, so the engine can find the connector's call-path methods.
    Raise `actionrt.ValidationError` (paths like `settings.pixelId`) for bad settings.
    """

    @property
    def name(self) -> str:
        """The name action files give as `connector:` (e.g. `slack.webhook`)."""
        ...

    def expand(self, action: dict[str, Any]) -> dict[str, Any]:
        """Return the action file dict with the connector's endpoint, auth and payload filled in."""
        ...


@runtime_checkable
class RequestShaper(Protocol):
    """A connector that changes the request of every call (once per call, before auth is applied).

    Called after the engine built the request (URL, headers, JSON body) from the action and the
    call's `params` (the variable values as given, keyed by dotted path), and before the
    destination check, capping and authentication. It may rewrite `request.content`, `headers` or
    `url` (same host). Raising `ValueError` means the call's input is unusable: the engine reports
    `internalError` with the message and sends nothing.
    """

    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None: ...


@runtime_checkable
class ResponseClassifier(Protocol):
    """A connector that reads its API's answers (every attempt's answer, before the retry decision).

    Returns None to let the engine judge by the status (2xx success; the default retry policy),
    or a bool saying the answer is a *failure* and whether to retry it: True retry, False do not.
    So a `200 {"ok": false}` body can be a failure, and a `400` that the API documents as
    transient can be retried. A retried answer still honours its `Retry-After` header.
    """

    def classify_response(self, response: HttpResponse) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class CallPathHooks:
    """A connector's call-path methods, looked up once when an action is compiled."""

    shape_request: Callable[[HttpRequest, Mapping[str, Any]], None] | None = None
    classify_response: Callable[[HttpResponse], bool | None] | None = None


NO_HOOKS = CallPathHooks()


def error_object(response: HttpResponse) -> dict[str, Any] | None:
    """The `error` object of a JSON error answer (`{"error": {...}}`, as Google's and Meta's APIs
    send), or None for a success or any other body: what a `classify_response` reads first."""
    if response.status < 400 or not response.content.startswith(b"{"):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def call_path_hooks(connector: object | None) -> CallPathHooks:
    """The bound `shape_request` / `classify_response` of `connector`, each None when absent."""
    if connector is None:
        return NO_HOOKS
    shape = getattr(connector, "shape_request", None)
    classify = getattr(connector, "classify_response", None)
    if shape is None and classify is None:
        return NO_HOOKS
    return CallPathHooks(
        shape if callable(shape) else None,
        classify if callable(classify) else None,
    )


class ConnectorSettings(BaseModel):
    """Base of a connector's settings model: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TemplateConnector(ABC):
    """A connector defined by a settings model and a template: most connectors need no more.

    Subclasses set `name`, `description`, `settings_model` and write `template(settings)`, which
    returns the action dict (without `name`). `expand` validates `settings`, renders the template
    and merges the action file's own keys over it (`merge_action`), so a file may add headers,
    variables, a response sample or a timeout, or override anything the template set.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    settings_model: ClassVar[type[BaseModel]]

    @abstractmethod
    def template(self, settings: Any) -> dict[str, Any]:
        """The action definition for these (validated) settings."""

    def expand(self, action: dict[str, Any]) -> dict[str, Any]:
        settings = self.settings(action.get("settings"))
        base = self.template(settings)
        overrides = {k: v for k, v in action.items() if k not in CONNECTOR_KEYS}
        return merge_action(base, overrides)

    def settings(self, raw: Any) -> Any:
        """`raw` validated by `settings_model`; `ValidationError` with `settings.<field>` paths."""
        try:
            return self.settings_model.model_validate({} if raw is None else raw)
        except pydantic.ValidationError as exc:
            raise ValidationError(settings_problems(exc)) from None

    def __repr__(self) -> str:
        return f"<connector {self.name}>"


def settings_problems(error: pydantic.ValidationError) -> list[Problem]:
    """pydantic's errors as problems at `settings.<field>` paths (source filled by the registry)."""
    problems = []
    for item in error.errors():
        path = ".".join(["settings", *(str(part) for part in item["loc"])])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        elif item["type"] == "missing":
            message = "required setting"
        problems.append(Problem("", path, message))
    return problems


def merge_action(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in: objects recursively, `headers` / `queryParameters` by
    the `name` of their items (same name replaces, new names are appended), other values replaced.
    Neither argument is modified."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = merge_action(current, value)
        elif key in NAMED_LISTS and isinstance(current, list) and isinstance(value, list):
            merged[key] = _merge_named(current, value, fold_case=key == "headers")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_named(current: list[Any], extra: list[Any], *, fold_case: bool) -> list[Any]:
    # Header names are case-insensitive (RFC 7230); query parameter names are not.
    def key_of(item: dict[str, Any]) -> str:
        name = str(item.get("name"))
        return name.lower() if fold_case else name

    result = list(current)
    positions = {key_of(item): i for i, item in enumerate(result) if isinstance(item, dict)}
    for item in extra:
        key = key_of(item) if isinstance(item, dict) else None
        if key is not None and key in positions:
            result[positions[key]] = copy.deepcopy(item)
        else:
            result.append(copy.deepcopy(item))
    return result
