"""Custom authorization (reference.md §3): call a token endpoint (GET, or POST with a form or
JSON body), read the token from its answer, inject it as a bearer, a header or a query parameter.

Header values may use `EncodeBase64(...)`; it is parsed on the configured text, before secrets
are substituted, so a secret containing `)` is encoded whole.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from actionrt.auth.base import AuthenticationError, Authenticator
from actionrt.auth.context import TokenResponse, endpoint_label
from actionrt.auth.models import CustomAuthorizationConfig
from actionrt.auth.tokens import (
    DEFAULT_LIFETIME,
    FetchedToken,
    TokenAuthenticator,
    usable_lifetime,
)
from actionrt.guard import control_character
from actionrt.secrets import SecretResolver

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

log = logging.getLogger("actionrt.auth")

ENCODE_BASE64 = "EncodeBase64("


def build_custom_authenticator(config: CustomAuthorizationConfig, context: AuthContext) -> Authenticator:
    """The authenticator for a `customAuthorization` block (its `subType` decides which)."""
    if config.subType == "certificateCredential":
        from actionrt.auth.certificate import CertificateCredentialAuthenticator

        return CertificateCredentialAuthenticator(config, context)
    return CustomAuthenticator(config, context)


def compile_header_value(text: str, secrets: SecretResolver) -> Callable[[], str]:
    """A header value as a function: secrets substituted, `EncodeBase64(...)` evaluated."""
    parts: list[Callable[[], str]] = []
    position = 0
    while (start := text.find(ENCODE_BASE64, position)) != -1:
        end = _closing_paren(text, start + len(ENCODE_BASE64))
        if end is None:
            break  # unbalanced: the rest is literal text
        parts.append(secrets.compile(text[position:start]))
        parts.append(_base64_of(secrets.compile(text[start + len(ENCODE_BASE64) : end])))
        position = end + 1
    if not parts:
        return secrets.compile(text)
    parts.append(secrets.compile(text[position:]))
    return lambda: "".join(part() for part in parts)


def _closing_paren(text: str, index: int) -> int | None:
    depth = 1
    for i in range(index, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _base64_of(inner: Callable[[], str]) -> Callable[[], str]:
    return lambda: base64.b64encode(inner().encode("utf-8")).decode("ascii")


def selector_path(selector: str) -> tuple[str, ...]:
    """`json://a.0.b` -> ("a", "0", "b")."""
    return tuple(selector.removeprefix("json://").split("."))


def select(data: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (a numeric segment indexes an array), or None."""
    for segment in path:
        if isinstance(data, dict):
            data = data.get(segment)
        elif isinstance(data, list) and segment.isdigit() and int(segment) < len(data):
            data = data[int(segment)]
        else:
            return None
    return data


def form_encode(params: dict[str, Any]) -> bytes:
    """`application/x-www-form-urlencoded`, UTF-8; a list gives the key once per item."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, _form_scalar(item)))
    return urlencode(pairs, encoding="utf-8").encode("ascii")


def _form_scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expiry_seconds(value: Any, unit_seconds: float, now: float) -> float | None:
    """Seconds left, from an expiry read in a token response: a number (or numeric string) of
    `unit`s, or an ISO 8601 date-time (an absolute expiry). None when unusable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) * unit_seconds
    if isinstance(value, str):
        try:
            return float(value) * unit_seconds
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp() - now
    return None


def _has_header(headers: dict[str, str], name: str) -> bool:
    lowered = name.lower()
    return any(key.lower() == lowered for key in headers)


class CustomAuthenticator(TokenAuthenticator):
    """`type: customAuthorization`."""

    scheme = "customAuthorization"

    def __init__(self, config: CustomAuthorizationConfig, context: AuthContext) -> None:
        super().__init__(
            context,
            injection=config.authorizationType,
            target=config.tokenTarget,
            endpoint_label=endpoint_label(config.endpoint),
        )
        secrets = context.secrets
        self.config = config
        self._endpoint = secrets.compile(config.endpoint)
        self._headers = [
            (name, compile_header_value(value, secrets)) for name, value in config.headers.items()
        ]
        self._token_path = (
            None if config.tokenInResponse == "response" else selector_path(config.tokenInResponse)
        )
        cache = config.cacheDuration
        self._fixed_lifetime = cache.seconds() if cache is not None else DEFAULT_LIFETIME
        self._expiry_path = (
            selector_path(cache.expiryInResponse)
            if cache is not None and cache.expiryInResponse is not None
            else None
        )
        self._expiry_unit = cache.unit_seconds if cache is not None else 1.0

    # -- the token call ---------------------------------------------------------------------

    def configured_params(self) -> dict[str, Any]:
        """The configured body params, secrets resolved."""
        if self.config.body is None:
            return {}
        resolved: dict[str, Any] = self._context.secrets.resolve_json(self.config.body.bodyParams)
        return resolved

    def body_params(self) -> dict[str, Any]:
        """The params sent in the token call's body."""
        return self.configured_params()

    def credentials(self) -> Any:
        return {
            "endpoint": self._endpoint(),
            "method": self.config.method,
            "headers": [(name, value()) for name, value in self._headers],
            "body": self.configured_params(),
            "bodyType": self.config.body.bodyType if self.config.body else None,
            "token": self.config.tokenInResponse,
            "cache": self.config.cacheDuration.masked() if self.config.cacheDuration else None,
        }

    async def fetch(self) -> FetchedToken:
        config = self.config
        headers = {name: value() for name, value in self._headers}
        content: bytes | None = None
        if config.method == "POST":
            params = self.body_params()
            if config.body is not None and config.body.bodyType == "json":
                content = json.dumps(params, ensure_ascii=False).encode("utf-8")
                content_type = "application/json; charset=utf-8"
            else:
                content = form_encode(params)
                content_type = "application/x-www-form-urlencoded; charset=utf-8"
            if not _has_header(headers, "Content-Type"):
                headers["Content-Type"] = content_type
        if not _has_header(headers, "Accept"):
            headers["Accept"] = "application/json"
        response = await self._context.token_request(
            config.method,
            self._endpoint(),
            headers=headers,
            content=content,
            label=self.endpoint_label,
        )
        return self._read_token(response)

    def _read_token(self, response: TokenResponse) -> FetchedToken:
        data: Any = None
        if self._token_path is None:
            token = self._whole_body_token(response)
        else:
            data = response.json()
            token = select(data, self._token_path)
            if not isinstance(token, str) or not token:
                raise AuthenticationError(
                    f"token endpoint {self.endpoint_label} answered {response.status} without a "
                    f"token at {self.config.tokenInResponse}",
                    status=response.status,
                )
        if control_character(token) is not None:
            raise AuthenticationError(
                f"token from {self.endpoint_label} contains control characters",
                status=response.status,
            )
        return FetchedToken(token, self._lifetime(response, data))

    def _whole_body_token(self, response: TokenResponse) -> str:
        # "response": the body is the token, raw text or a JSON string.
        try:
            text = response.content.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = ""
        if text.startswith('"'):
            parsed = response.json()
            text = parsed if isinstance(parsed, str) else ""
        elif text.startswith(("{", "[")):
            text = ""
        if not text:
            raise AuthenticationError(
                f"token endpoint {self.endpoint_label} answered {response.status} with a body "
                "that is not a token",
                status=response.status,
            )
        return text

    def _lifetime(self, response: TokenResponse, data: Any) -> float:
        if self._expiry_path is None:
            return usable_lifetime(self._fixed_lifetime or DEFAULT_LIFETIME, from_response=False)
        if data is None:
            data = response.json()
        seconds = expiry_seconds(
            select(data, self._expiry_path), self._expiry_unit, self._context.wall_clock()
        )
        if seconds is None:
            assert self.config.cacheDuration is not None
            log.warning(
                "token response of %s has no usable expiry at %s: keeping the token one hour",
                self.endpoint_label,
                self.config.cacheDuration.expiryInResponse,
            )
            return DEFAULT_LIFETIME
        return usable_lifetime(seconds, from_response=True)
