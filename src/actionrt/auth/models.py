"""Config models of the built-in authentication schemes: one pydantic model per `type`.

The loader validates an action's `authentication` block with `config_model.model_validate(block)`;
field names are the camelCase keys of the published JSON and unknown keys are errors. Fields that
may hold a secret never show it: `SecretStr`, or hidden from repr and masked by `masked()`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from actionrt.guard import FORBIDDEN_HEADERS
from actionrt.secrets import ANY_TEMPLATE, SECRET_REF

MASK = "***"

# RFC 7230 `token`: the characters a header (or our query parameter) name may use.
_FIELD_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# `json://a.b.0.c`: dot-separated, non-empty segments; a numeric segment indexes an array.
_JSON_SELECTOR = re.compile(r"^json://[^.\s]+(\.[^.\s]+)*$")

TIME_UNIT_SECONDS: dict[str, float] = {
    "milliseconds": 0.001,
    "seconds": 1.0,
    "minutes": 60.0,
    "hours": 3600.0,
    "days": 86400.0,
    "months": 30 * 86400.0,  # a month is 30 days: token lifetimes need no calendar
    "years": 365 * 86400.0,
}
TimeUnitName = Literal["milliseconds", "seconds", "minutes", "hours", "days", "months", "years"]


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _check_secret_refs(text: str) -> str:
    """Every `{{ ... }}` in a string must be a well-formed `{{ secrets.NAME }}` reference."""
    for match in ANY_TEMPLATE.finditer(text):
        if not SECRET_REF.fullmatch(match.group(0)):
            raise PydanticCustomError(
                "secret_reference",
                "malformed secret reference: write {{ secrets.NAME }} or {{ secrets.PROVIDER:NAME }}",
            )
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise _error("empty", "must not be empty")
    return _check_secret_refs(text)


def _non_empty_secret(value: SecretStr) -> SecretStr:
    _non_empty(value.get_secret_value())
    return value


def _field_name(text: str) -> str:
    if not _FIELD_NAME.match(text):
        raise _error("field_name", "must be a valid HTTP field name (RFC 7230 token characters)")
    return text


def _settable_header(name: str) -> str:
    """A header name credentials may be sent in: not one the HTTP layer sets itself (the
    transport drops an action's copy, so the credentials would silently never be sent)."""
    lowered = name.lower()
    if lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
        raise PydanticCustomError(
            "managed_header", "{name} is set by the HTTP layer, not by an action", {"name": repr(name)}
        )
    return name


def _url(text: str) -> str:
    _non_empty(text)
    if SECRET_REF.search(text):
        return text  # checked once the secret is known, when the token is first fetched
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _error("url", "must be an absolute http or https URL")
    if parts.username or parts.password:
        raise _error("url", "must not carry credentials in the URL")
    return text


def _token_selector(text: str) -> str:
    if text == "response" or _JSON_SELECTOR.match(text):
        return text
    raise _error(
        "token_selector",
        "must be 'response' or a json:// path such as json://access_token or json://data.0.token",
    )


def _json_selector(text: str) -> str:
    if _JSON_SELECTOR.match(text):
        return text
    raise _error("json_selector", "must be a json:// path such as json://expires_in")


def _is_certificate(info: ValidationInfo) -> bool:
    return info.data.get("subType") == "certificateCredential"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


_AUTHORIZATION_TYPES = {"bearer": "bearer", "header": "header", "queryparam": "queryParam"}


def _authorization_type(value: Any) -> Any:
    # Published examples write "Bearer": accept any case, keep one canonical spelling.
    if isinstance(value, str):
        return _AUTHORIZATION_TYPES.get(value.lower(), value)
    return value


def _check_json_refs(value: JsonValue, path: str = "") -> None:
    if isinstance(value, str):
        try:
            _check_secret_refs(value)
        except PydanticCustomError as exc:
            where = f"{path}: " if path else ""
            raise _error("secret_reference", where + exc.message()) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_refs(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_refs(item, f"{path}.{index}" if path else str(index))


def _json_params(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    _check_json_refs(value)
    return value


Text = Annotated[str, AfterValidator(_non_empty)]
OptionalText = Annotated[str, AfterValidator(_check_secret_refs)]
Secret = Annotated[SecretStr, AfterValidator(_non_empty_secret)]
FieldName = Annotated[str, AfterValidator(_field_name)]
HeaderName = Annotated[str, AfterValidator(_field_name), AfterValidator(_settable_header)]
Url = Annotated[str, AfterValidator(_url)]
TokenSelector = Annotated[str, AfterValidator(_token_selector)]
JsonSelector = Annotated[str, AfterValidator(_json_selector)]
Params = Annotated[dict[str, JsonValue], AfterValidator(_json_params)]


def _mask_text(text: str) -> str:
    """A value as it may be shown: kept when it is only secret references, else `***`."""
    return text if text.strip() and not SECRET_REF.sub("", text).strip() else MASK


def _mask_json(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


class ConfigPart(BaseModel):
    """Base of every config model: strict keys, immutable, secrets never shown."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # Fields whose every string leaf may be a secret (shown masked).
    masked_fields: ClassVar[frozenset[str]] = frozenset()

    def masked(self) -> dict[str, Any]:
        """The config as JSON-ready data, every secret value replaced by `***`.

        A value that is only `{{ secrets.NAME }}` references is shown as written: it names the
        secret, it is not the secret.
        """
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                shown[name] = _mask_text(value.get_secret_value())
            elif isinstance(value, ConfigPart):
                shown[name] = value.masked()
            elif name in self.masked_fields:
                shown[name] = _mask_json(value)
            elif isinstance(value, BaseModel):
                shown[name] = value.model_dump(mode="json", exclude_none=True)
            else:
                shown[name] = value
        return shown


class AuthConfig(ConfigPart):
    """Base of a scheme's config: the `authentication` block, `type` included."""

    type: str


class NoAuthConfig(AuthConfig):
    """`{type: none}`: nothing is added to the request."""

    type: Literal["none"]


class BasicAuthConfig(AuthConfig):
    """`Authorization: Basic base64(username:password)`."""

    type: Literal["basic"]
    username: Text
    password: Secret


class ApiKeyConfig(AuthConfig):
    """A key sent as a header or a query parameter named `name`."""

    type: Literal["apiKey"]
    # `location` comes first so that `name` is checked knowing where it goes.
    location: Annotated[Literal["header", "query"], BeforeValidator(_lower)] = "header"
    name: FieldName
    value: Secret

    @field_validator("name")
    @classmethod
    def _header_name(cls, name: str, info: ValidationInfo) -> str:
        return _settable_header(name) if info.data.get("location") == "header" else name


class BearerConfig(AuthConfig):
    """A static token: `Authorization: Bearer <token>`, normally `{{ secrets.NAME }}`."""

    type: Literal["bearer"]
    token: Secret


class TokenBody(ConfigPart):
    """The token call's body: form (urlencoded UTF-8) or JSON; nested params only for JSON."""

    masked_fields: ClassVar[frozenset[str]] = frozenset({"bodyParams"})

    bodyType: Annotated[Literal["form", "json"], BeforeValidator(_lower)]
    bodyParams: Params = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _form_is_flat(self) -> TokenBody:
        if self.bodyType == "form":
            for key, value in self.bodyParams.items():
                items = value if isinstance(value, list) else [value]
                if any(isinstance(item, dict | list) for item in items):
                    raise PydanticCustomError(
                        "form_nested",
                        "bodyParams.{key}: nested objects are sent only with bodyType json "
                        "(a form value is a scalar or a list of scalars)",
                        {"key": key},
                    )
        return self


class CacheDuration(ConfigPart):
    """How long a token is kept: a fixed `duration`, or the expiry the token response gives."""

    duration: Annotated[int, Field(gt=0)] | None = None
    expiryInResponse: JsonSelector | None = None
    timeUnit: Annotated[TimeUnitName, BeforeValidator(_lower)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CacheDuration:
        if (self.duration is None) == (self.expiryInResponse is None):
            raise _error(
                "cache_duration",
                "give exactly one of duration and expiryInResponse (they are mutually exclusive)",
            )
        if self.duration is not None and self.timeUnit is None:
            raise _error("cache_duration", "timeUnit is required with duration")
        return self

    def seconds(self) -> float | None:
        """The fixed lifetime in seconds, or None when the expiry comes from the response."""
        if self.duration is None:
            return None
        return self.duration * TIME_UNIT_SECONDS[self.timeUnit or "seconds"]

    @property
    def unit_seconds(self) -> float:
        """Seconds per unit of the expiry read from the response (seconds by default)."""
        return TIME_UNIT_SECONDS[self.timeUnit or "seconds"]


class CustomAuthorizationConfig(AuthConfig):
    """The documented two-step flow: call a token endpoint, inject the token in the action call.

    With `subType: certificateCredential` the token call carries an RS256-signed JWT client
    assertion (RFC 7523) instead of a client secret: `aud`, `clientId` (or `bodyParams.client_id`),
    a private key (`privateKey` PEM text or `privateKeyFile`) and its certificate (`certificate`
    PEM text or `certificateFile`) are then required, the endpoint must be https and the method POST.
    """

    masked_fields: ClassVar[frozenset[str]] = frozenset({"headers"})

    # Field order matters: each cross-field rule is checked on the later field, so every
    # problem is reported at its own field path (e.g. `tokenTarget: required when ...`).
    type: Literal["customAuthorization"]
    subType: Literal["certificateCredential"] | None = None
    endpoint: Url
    method: Annotated[Literal["GET", "POST"], BeforeValidator(_upper)]
    headers: dict[HeaderName, OptionalText] = Field(default_factory=dict, repr=False)
    body: TokenBody | None = Field(default=None, validate_default=True)
    tokenInResponse: TokenSelector
    cacheDuration: CacheDuration | None = None
    authorizationType: Annotated[
        Literal["bearer", "header", "queryParam"], BeforeValidator(_authorization_type)
    ] = "bearer"
    tokenTarget: FieldName | None = Field(default=None, validate_default=True)
    # certificateCredential only
    aud: Text | None = Field(default=None, validate_default=True)
    clientId: Text | None = Field(default=None, validate_default=True)
    privateKey: Secret | None = None
    privateKeyFile: Text | None = Field(default=None, validate_default=True)
    privateKeyPassword: Secret | None = None
    certificate: Text | None = None
    certificateFile: Text | None = Field(default=None, validate_default=True)

    @field_validator("endpoint")
    @classmethod
    def _https_for_certificate(cls, endpoint: str, info: ValidationInfo) -> str:
        if _is_certificate(info) and not endpoint.lower().startswith("https://"):
            raise _error("certificate", "must be https with subType certificateCredential")
        return endpoint

    @field_validator("method")
    @classmethod
    def _post_for_certificate(cls, method: str, info: ValidationInfo) -> str:
        if _is_certificate(info) and method != "POST":
            raise _error("certificate", "must be POST with subType certificateCredential")
        return method

    @field_validator("body")
    @classmethod
    def _body_for_post(cls, body: TokenBody | None, info: ValidationInfo) -> TokenBody | None:
        method = info.data.get("method")
        if _is_certificate(info):
            if body is not None and body.bodyType != "form":
                raise _error("certificate", "bodyType must be form with subType certificateCredential")
        elif method == "POST" and body is None:
            raise _error("missing", "required when method is POST")
        if method == "GET" and body is not None:
            raise _error("body_with_get", "sent only with method POST: remove it or use POST")
        return body

    @field_validator("tokenTarget")
    @classmethod
    def _target_for_injection(cls, target: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("authorizationType")
        if kind in ("header", "queryParam") and target is None:
            raise _error("missing", f"required when authorizationType is {kind}")
        if kind == "header" and target is not None:
            _settable_header(target)
        if kind == "bearer" and target is not None:
            raise _error("unused", "used only with authorizationType header or queryParam")
        return target

    @field_validator(
        "aud",
        "clientId",
        "privateKey",
        "privateKeyFile",
        "privateKeyPassword",
        "certificate",
        "certificateFile",
    )
    @classmethod
    def _certificate_fields(cls, value: Any, info: ValidationInfo) -> Any:
        field = info.field_name
        data = info.data
        if not _is_certificate(info):
            if value is not None:
                raise _error("certificate", "allowed only with subType certificateCredential")
            return value
        if field == "aud" and value is None:
            raise _error("missing", "required with subType certificateCredential")
        if field == "clientId" and value is None:
            body = data.get("body")
            if not (isinstance(body, TokenBody) and isinstance(body.bodyParams.get("client_id"), str)):
                raise _error(
                    "missing",
                    "required with subType certificateCredential (or give body.bodyParams.client_id)",
                )
        if field == "privateKeyFile" and (value is None) == (data.get("privateKey") is None):
            raise _error("certificate", "give exactly one of privateKey and privateKeyFile")
        if field == "certificateFile" and (value is None) == (data.get("certificate") is None):
            raise _error("certificate", "give exactly one of certificate and certificateFile")
        return value

    @property
    def client_id(self) -> str | None:
        """The assertion's iss/sub: `clientId`, else the body's `client_id`."""
        if self.clientId is not None:
            return self.clientId
        if self.body is not None:
            value = self.body.bodyParams.get("client_id")
            return value if isinstance(value, str) else None
        return None


class OAuth2ClientCredentialsConfig(AuthConfig):
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4); the token is sent as a bearer.

    `clientAuthentication`: `header` (client_secret_basic, the default) or `body`
    (client_secret_post). The token lives for the response's `expires_in` minus one minute
    (one hour when the response gives none).
    """

    type: Literal["oauth2ClientCredentials"]
    tokenEndpoint: Url
    clientId: Text
    clientSecret: Secret
    scope: Text | list[Text] | None = None
    audience: Text | None = None
    clientAuthentication: Annotated[Literal["header", "body"], BeforeValidator(_lower)] = "header"

    @property
    def scope_text(self) -> str | None:
        """The scope as the token request sends it (space-separated)."""
        if isinstance(self.scope, list):
            return " ".join(self.scope)
        return self.scope


BUILTIN_CONFIGS: dict[str, type[AuthConfig]] = {
    "none": NoAuthConfig,
    "basic": BasicAuthConfig,
    "apiKey": ApiKeyConfig,
    "bearer": BearerConfig,
    "customAuthorization": CustomAuthorizationConfig,
    "oauth2ClientCredentials": OAuth2ClientCredentialsConfig,
}
