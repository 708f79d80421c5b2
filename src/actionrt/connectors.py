"""The connector interface: a named bundle of action templates plus API-specific code.

An action file says `connector: <name>` and gives that connector's `settings`; at load time the
connector's `expand` turns it into a plain action definition, validated like a hand-written one.
Only APIs that need code add the optional call-path methods `shape_request` (hashing, signing,
batch limits) and `classify_response` (reading the API's own error bodies into a `Verdict`); the
engine looks them up once per action (`call_path_hooks`) and calls them as plain methods. A
connector whose API takes form-encoded bodies says `body_encoding = "form"`.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable
from urllib.parse import urlencode

import pydantic
from pydantic import BaseModel, ConfigDict

from actionrt.errors import Problem, ValidationError
from actionrt.http import HttpRequest, HttpResponse

log = logging.getLogger("actionrt.connectors")

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


RetryAdvice = Literal["now", "later", "never"]
BodyEncoding = Literal["json", "form"]
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A connector's reading of a *failed* answer: whether and when to retry, and why.

    `retry` is `now` (the engine's backoff), `never` (final: the same request cannot succeed,
    or a retry could act twice) or `later` (the provider asked to wait `after` seconds: the call
    retries if that fits its deadline, else ends with `retry_after` set so the caller can
    reschedule). `code` is the provider's own reason, prefixed by the provider (`fcm:UNREGISTERED`,
    `graph:613`); `message` its one-line explanation. Build one with `retry_now`, `do_not_retry`
    or `retry_later`.
    """

    retry: RetryAdvice
    code: str | None = None
    message: str | None = None
    after: float | None = None

    def __post_init__(self) -> None:
        if self.retry not in ("now", "later", "never"):
            raise ValueError(f"Verdict.retry must be now, later or never, not {self.retry!r}")
        if (self.retry == "later") != (self.after is not None):
            raise ValueError("Verdict.after (seconds) goes with retry='later', and only with it")
        if self.after is not None and not self.after >= 0:
            raise ValueError(f"Verdict.after must be a number of seconds >= 0, not {self.after!r}")

    @classmethod
    def retry_now(cls, code: str | None = None, message: str | None = None) -> Verdict:
        """A transient failure: retry with the engine's backoff (honouring `Retry-After`)."""
        return cls("now", code, message)

    @classmethod
    def do_not_retry(cls, code: str | None = None, message: str | None = None) -> Verdict:
        """A final failure: retrying cannot help, or could deliver twice."""
        return cls("never", code, message)

    @classmethod
    def retry_later(cls, after: float, code: str | None = None, message: str | None = None) -> Verdict:
        """The provider asked for a wait of `after` seconds before another try."""
        return cls("later", code, message, float(after))


ClassifierAnswer = Verdict | bool | None
"""What `classify_response` may return: a `Verdict`, None (judge by the status), or the older
bool (True: `Verdict.retry_now()`, False: `Verdict.do_not_retry()`)."""


@runtime_checkable
class ResponseClassifier(Protocol):
    """A connector that reads its API's answers (every attempt's answer, before the retry decision).

    Returns None to let the engine judge by the status (2xx success; the default retry policy),
    or a `Verdict` saying the answer is a *failure*, whether and when to retry it, and the
    provider's code and message. So a `200 {"ok": false}` body can be a failure, a `400` that
    the API documents as transient can be retried, and a rate limit can ask for a later retry.
    The older bool answers are still read (True: retry now; False: never). A classifier that
    raises is logged (once per action) and the answer judged by its status.
    """

    def classify_response(self, response: HttpResponse) -> ClassifierAnswer: ...


Classify = Callable[[HttpResponse], "Verdict | None"]
Shape = Callable[[HttpRequest, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class CallPathHooks:
    """A connector's call-path methods, looked up once when an action is compiled.

    `classify_response` is the connector's, guarded: it always answers a `Verdict` or None.
    `shape_request` includes the form encoding of a `body_encoding = "form"` connector.
    """

    shape_request: Shape | None = None
    classify_response: Classify | None = None


NO_HOOKS = CallPathHooks()
CALL_PATH_METHODS = {"shape_request": 2, "classify_response": 1}
"""The optional call-path methods of a connector, and how many arguments each takes."""


def as_verdict(answer: object) -> Verdict | None:
    """A classifier's answer as a `Verdict` (or None); TypeError for anything else."""
    if answer is None or isinstance(answer, Verdict):
        return answer
    if answer is True:
        return Verdict.retry_now()
    if answer is False:
        return Verdict.do_not_retry()
    raise TypeError(f"classify_response returned {type(answer).__name__}; expected a Verdict or None")


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


def encode_form(content: bytes) -> bytes:
    """A JSON object body as `application/x-www-form-urlencoded`: lists become repeated keys
    (`To=a&To=b`), nested objects bracketed keys (`metadata[plan]=pro`, Stripe's style), booleans
    `true`/`false`; nulls are left out. ValueError when the body is not a JSON object."""
    body = json.loads(content)
    if not isinstance(body, dict):
        raise ValueError("a form-encoded body must be an object of fields")
    return urlencode(list(_form_pairs(body, ""))).encode("ascii")


def _form_pairs(value: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _form_pairs(item, f"{key}[{name}]" if key else str(name))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                raise ValueError(f"{key}: a form field's list holds plain values only")
            yield from _form_pairs(item, key)
    elif isinstance(value, bool):
        yield key, "true" if value else "false"
    elif value is not None:
        yield key, str(value)


def call_path_hooks(connector: object | None) -> CallPathHooks:
    """The call-path methods of `connector`: its `shape_request` (followed by the form encoding
    of a form connector) and its guarded `classify_response`; each None when absent."""
    if connector is None:
        return NO_HOOKS
    shape = getattr(connector, "shape_request", None)
    classify = getattr(connector, "classify_response", None)
    form = getattr(connector, "body_encoding", "json") == "form"
    shaper = shape if callable(shape) else None
    if form:
        shaper = _form_shaper(shaper)
    if shaper is None and not callable(classify):
        return NO_HOOKS
    name = str(getattr(connector, "name", type(connector).__name__))
    return CallPathHooks(shaper, _guarded(classify, name) if callable(classify) else None)


def _form_shaper(shape: Shape | None) -> Shape:
    def shape_form(request: HttpRequest, params: Mapping[str, Any]) -> None:
        if shape is not None:
            shape(request, params)  # the connector's own shaping still sees the JSON body
        if request.content is None:
            return
        request.content = encode_form(request.content)
        for header in [h for h in request.headers if h.lower() == "content-type"]:
            del request.headers[header]
        request.headers["Content-Type"] = FORM_CONTENT_TYPE

    return shape_form


def _guarded(classify: Callable[[HttpResponse], object], connector: str) -> Classify:
    # One closure per action (call_path_hooks runs once per action): a broken classifier is
    # logged once per action, not once per call, and never turns an answer into internalError.
    logged = False

    def classify_or_status(response: HttpResponse) -> Verdict | None:
        nonlocal logged
        try:
            return as_verdict(classify(response))
        except Exception as exc:
            if not logged:
                logged = True
                log.warning(
                    "connector %s: classify_response failed (%s: %s); its answers are judged by "
                    "their status alone",
                    connector,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:200],
                )
            return None

    return classify_or_status


def call_path_problems(connector: object) -> list[str]:
    """What is wrong with a connector's call-path methods, checked when it is registered: a
    public method named like `shape_request` / `classify_response` but not quite (it would never
    be called), or one of them taking the wrong number of arguments."""
    problems = []
    for attribute in sorted(dir(connector)):
        if attribute.startswith("_") or attribute in CALL_PATH_METHODS:
            continue
        close = difflib.get_close_matches(attribute, CALL_PATH_METHODS, n=1, cutoff=0.85)
        if close and callable(getattr(connector, attribute, None)):
            problems.append(f"method {attribute!r} would never be called: did you mean {close[0]!r}?")
    for method, count in CALL_PATH_METHODS.items():
        function = getattr(connector, method, None)
        if function is None:
            continue
        if not callable(function):
            problems.append(f"{method} is not a method")
            continue
        try:
            inspect.signature(function).bind(*range(count))
        except TypeError:
            problems.append(f"{method} must take {count} argument{'s' if count > 1 else ''}")
        except ValueError:  # no signature to read (a builtin): nothing to check
            pass
    encoding = getattr(connector, "body_encoding", "json")
    if encoding not in ("json", "form"):
        problems.append(f"body_encoding must be 'json' or 'form', not {encoding!r}")
    return problems


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
    body_encoding: ClassVar[BodyEncoding] = "json"
    """`form`: the request sample is still written as JSON, and sent form-encoded (`encode_form`)."""

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
