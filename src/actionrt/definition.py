"""The action file model (contract.md §1) and every rule of reference.md §1–4, checked at load.

`parse_action(raw, source=..., plugins=...)` turns one action dict into an `Action`, or raises
`ValidationError` listing every problem found, each as `file: field.path: message`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from actionrt.errors import Problem, ValidationError
from actionrt.guard import is_forbidden_header
from actionrt.loader import check_shape
from actionrt.payload import FieldSpec, FieldType, VariableSpec, infer_fields, resolve_variable

if TYPE_CHECKING:
    from actionrt.plugins import Plugins

NAME_PATTERN = r"^[A-Za-z0-9_]{1,30}$"
# RFC 7230 `token`: the characters a header field name may use.
FIELD_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
JSON_MEDIA_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Spaces and control characters: a URL holding one cannot be written on a request line.
URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
# One DNS label (letters, digits, '-', and '_' which some real hosts use), after IDNA encoding.
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
METHODS = ("POST", "PUT", "GET")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_ModelT = TypeVar("_ModelT", bound=_Model)


def _field_name(value: str) -> str:
    if not FIELD_NAME.match(value):
        raise ValueError("must be a valid HTTP field name (RFC 7230 token characters)")
    if value[0] in ".$":
        raise ValueError("must not start with '.' or '$'")
    return value


class ParamField(_Model):
    """A header or query parameter: constant (value) or variable (label, optional)."""

    name: str
    value: str | None = None
    variable: bool = False
    label: str | None = None
    optional: bool = False

    _check_name = field_validator("name")(_field_name)

    @pydantic.model_validator(mode="after")
    def _constant_or_variable(self) -> ParamField:
        if self.variable:
            if not self.label:
                raise ValueError("a variable field needs a label")
            if self.value is not None:
                raise ValueError("a variable field takes a label, not a value")
        else:
            if self.value is None:
                raise ValueError("a constant field needs a value (or set variable: true)")
            if self.optional:
                raise ValueError("only a variable field can be optional")
            if any(c in self.value for c in "\r\n\0"):
                raise ValueError("value must not contain CR, LF or NUL")
        return self


class ClientCertificate(_Model):
    """Mutual TLS: the client certificate and key presented to the endpoint."""

    certFile: str
    keyFile: str
    password: str | None = None


class Endpoint(_Model):
    """Where the action calls: URL (static part), method, headers, query parameters."""

    url: str
    method: Literal["POST", "PUT", "GET"]
    dynamicPath: bool = False
    headers: list[ParamField] = Field(default_factory=list)
    queryParameters: list[ParamField] = Field(default_factory=list)
    clientCertificate: ClientCertificate | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if value == "DELETE":
                raise ValueError("DELETE is not supported: use POST, PUT or GET")
            if value not in METHODS:
                raise ValueError(f"must be one of POST, PUT, GET (got {value!r})")
        return value


class Variable(_Model):
    """A request field switched to Variable."""

    label: str = Field(min_length=1)
    optional: bool = False
    type: FieldType | None = None


class RequestSpec(_Model):
    """The example payload, the fields made variable, and the null rule."""

    sample: dict[str, Any]
    variables: dict[str, Variable] = Field(default_factory=dict)
    allowNull: bool = False


class SampleSpec(_Model):
    """An example response body (success or error)."""

    sample: dict[str, Any]


class RetrySpec(_Model):
    """How many retries after the first call, and which failures are retried."""

    count: int = Field(default=3, ge=0, le=10)
    policy: Literal["default", "reference"] = "default"


class ActionDefinition(_Model):
    """One custom action, exactly as written in its file."""

    kind: Literal["action"] = "action"
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    connector: str | None = None
    endpoint: Endpoint
    authentication: dict[str, Any] = Field(default_factory=lambda: {"type": "none"})
    request: RequestSpec | None = None
    response: SampleSpec | None = None
    errorResponse: SampleSpec | None = None
    timeout: float = Field(default=30, ge=1, le=30)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    idempotencyKey: str | None = None

    _check_idempotency_key = field_validator("idempotencyKey")(lambda v: v if v is None else _field_name(v))

    @property
    def auth_type(self) -> str:
        return str(self.authentication.get("type", "none"))


@dataclass(frozen=True)
class Action:
    """A validated action: its definition plus what was derived from it once, at load."""

    definition: ActionDefinition
    source: str
    auth: BaseModel
    request_fields: FieldSpec | None = None
    variables: dict[str, VariableSpec] = field(default_factory=dict)
    response_fields: FieldSpec | None = None
    error_response_fields: FieldSpec | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def host(self) -> str:
        return urlsplit(self.definition.endpoint.url).hostname or ""


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_problems(error: pydantic.ValidationError, source: str, prefix: str = "") -> list[Problem]:
    """Turn pydantic's errors into our problems, with dotted field paths."""
    problems = []
    for err in error.errors():
        path = _loc(tuple(err["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and path.endswith("name"):
            message = "must be 1 to 30 letters, digits or '_'"
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "literal_error" and path == "kind":
            message = "an action file has no kind, or kind: action"
        problems.append(Problem(source, path, message))
    return problems


def check_url(url: str, *, allow_private_network: bool = False) -> str | None:
    """The reason an endpoint URL is refused, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in DEFAULT_PORTS:
        return "must be an absolute http:// or https:// URL"
    if URL_FORBIDDEN.search(url):
        return "must not contain spaces or control characters (percent-encode them)"
    host = parts.hostname
    if not host:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain user info (put credentials in authentication)"
    if parts.fragment or url.endswith("#"):
        return "must not contain a fragment"
    if parts.query or "?" in url:
        return "must not contain a query string: use endpoint.queryParameters"
    if not parts.path.isascii():
        return "the path must be ASCII: percent-encode other characters"
    if not is_valid_host(host):
        return f"{host!r} is not a valid host name"
    if allow_private_network:
        return None
    if _is_ip_literal(host):
        return "IP addresses are not allowed"
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        return f"only the default port is allowed ({DEFAULT_PORTS[parts.scheme]} for {parts.scheme})"
    return None


def is_valid_host(host: str) -> bool:
    """A DNS name (international names through IDNA) or an IP literal."""
    if ":" in host:
        return _is_ip_literal(host)
    try:  # the idna codec is slow: ASCII names skip it
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.removesuffix(".").split(".")
    return all(HOST_LABEL.match(label) for label in labels)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # Forms resolvers still read as IPv4: 2130706433, 0x7f.1, 127.1
    return bool(re.fullmatch(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}\.?", host, re.I))


def _check_headers(endpoint: Endpoint, source: str) -> list[Problem]:
    problems = []
    for where, fields in (("headers", endpoint.headers), ("queryParameters", endpoint.queryParameters)):
        seen: set[str] = set()
        for i, param in enumerate(fields):
            path = f"endpoint.{where}[{i}]"
            key = param.name.lower() if where == "headers" else param.name
            if key in seen:
                problems.append(Problem(source, f"{path}.name", f"{param.name!r} is declared twice"))
            seen.add(key)
            if where != "headers":
                continue
            if is_forbidden_header(key):
                problems.append(
                    Problem(
                        source, f"{path}.name", f"{param.name!r} is set by the HTTP layer, not by an action"
                    )
                )
            elif key == "content-type":
                if param.variable:
                    problems.append(Problem(source, path, "Content-Type can't be variable"))
                elif not JSON_MEDIA_TYPE.match(param.value or ""):
                    problems.append(
                        Problem(
                            source,
                            f"{path}.value",
                            "Content-Type must be a JSON media type (application/json)",
                        )
                    )
            elif key == "charset" and (
                param.variable or (param.value or "").lower() not in ("utf-8", "utf8")
            ):
                problems.append(Problem(source, path, "Charset is managed: it can only be a constant UTF-8"))
    return problems


def _check_endpoint(endpoint: Endpoint, source: str, allow_private_network: bool) -> list[Problem]:
    reason = check_url(endpoint.url, allow_private_network=allow_private_network)
    problems = [Problem(source, "endpoint.url", reason)] if reason else []
    return problems + _check_headers(endpoint, source)


def _check_payload(
    request: RequestSpec | None, method: str | None, source: str
) -> tuple[FieldSpec | None, dict[str, VariableSpec], list[Problem]]:
    """The request's field tree and variables; `method` is None when the endpoint is invalid."""
    if request is None:
        return None, {}, []
    problems: list[Problem] = []
    if method == "GET":
        problems.append(Problem(source, "request", "a request payload is only for POST and PUT"))
    root, inferred = infer_fields(request.sample, source=source, where="request.sample")
    problems += inferred
    variables: dict[str, VariableSpec] = {}
    for path, var in request.variables.items():
        resolved = resolve_variable(root, path, label=var.label, optional=var.optional, declared=var.type)
        if isinstance(resolved, str):
            problems.append(Problem(source, f"request.variables.{path}", resolved))
        else:
            variables[path] = resolved
    return root, variables, problems


def _infer_sample(spec: SampleSpec | None, key: str, source: str) -> tuple[FieldSpec | None, list[Problem]]:
    if spec is None:
        return None, []
    return infer_fields(spec.sample, source=source, where=f"{key}.sample")


def _valid_part(model: type[_ModelT], value: Any) -> _ModelT | None:
    """`value` as `model`, or None when it is missing or invalid (pydantic already said why)."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except pydantic.ValidationError:
        return None


def _check_valid_parts(raw: dict[str, Any], source: str, allow_private_network: bool) -> list[Problem]:
    """The rules beyond the model's, on each part of a file the model refused that is valid on
    its own: a file with a bad name still hears about its IP-address URL and its sample."""
    problems: list[Problem] = []
    endpoint = _valid_part(Endpoint, raw.get("endpoint"))
    if endpoint is not None:
        problems += _check_endpoint(endpoint, source, allow_private_network)
    else:
        url = raw["endpoint"].get("url") if isinstance(raw.get("endpoint"), dict) else None
        reason = check_url(url, allow_private_network=allow_private_network) if isinstance(url, str) else None
        problems += [Problem(source, "endpoint.url", reason)] if reason else []
    method = endpoint.method if endpoint is not None else None
    problems += _check_payload(_valid_part(RequestSpec, raw.get("request")), method, source)[2]
    for key in ("response", "errorResponse"):
        problems += _infer_sample(_valid_part(SampleSpec, raw.get(key)), key, source)[1]
    return problems


def _check_auth(raw: Any, source: str, plugins: Plugins) -> tuple[BaseModel | None, list[Problem]]:
    if raw is None:
        raw = {"type": "none"}
    if not isinstance(raw, dict):
        return None, [Problem(source, "authentication", "must be an object with a type")]
    scheme_type = raw.get("type", "none")
    scheme = plugins.schemes.get(scheme_type) if isinstance(scheme_type, str) else None
    if scheme is None:
        known = ", ".join(sorted(plugins.schemes))
        return None, [
            Problem(source, "authentication.type", f"unknown type {scheme_type!r} (known: {known})")
        ]
    try:
        config: BaseModel = scheme.config_model.model_validate(raw)
        return config, []
    except pydantic.ValidationError as exc:
        return None, pydantic_problems(exc, source, "authentication")


def parse_action(
    raw: Any,
    *,
    source: str,
    plugins: Plugins,
    allow_private_network: bool = False,
) -> Action:
    """Validate one action dict; raise ValidationError listing every problem found."""
    if not isinstance(raw, dict):
        raise ValidationError.single(source, "", "an action file must hold one object (a mapping)")
    check_shape(raw, source=source)
    problems: list[Problem] = []
    auth, auth_problems = _check_auth(raw.get("authentication"), source, plugins)
    problems += auth_problems
    raw_auth = raw.get("authentication")
    try:
        definition = ActionDefinition.model_validate(
            {**raw, "authentication": raw_auth if isinstance(raw_auth, dict) else {"type": "none"}}
        )
    except pydantic.ValidationError as exc:
        problems += pydantic_problems(exc, source)
        problems += _check_valid_parts(raw, source, allow_private_network)
        raise ValidationError(problems) from None
    problems += _check_endpoint(definition.endpoint, source, allow_private_network)
    request_fields, variables, payload_problems = _check_payload(
        definition.request, definition.endpoint.method, source
    )
    problems += payload_problems
    response_fields, response_problems = _infer_sample(definition.response, "response", source)
    error_fields, error_problems = _infer_sample(definition.errorResponse, "errorResponse", source)
    problems += response_problems + error_problems
    if problems or auth is None:
        raise ValidationError(problems)
    return Action(
        definition=definition,
        source=source,
        auth=auth,
        request_fields=request_fields,
        variables=variables,
        response_fields=response_fields,
        error_response_fields=error_fields,
    )


def action_json_schema() -> dict[str, Any]:
    """The JSON Schema of the action file format, generated from the model."""
    schema = ActionDefinition.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "actionrt action file"
    return schema
