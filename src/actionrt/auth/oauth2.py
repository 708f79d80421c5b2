"""OAuth 2.0 client credentials (RFC 6749 §4.4) with authlib's client authentication: the client
id and secret in the `Authorization` header (client_secret_basic) or in the body
(client_secret_post). The token is sent as a bearer; it lives for `expires_in` minus a minute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_token_request,
)

from actionrt.auth.base import AuthenticationError
from actionrt.auth.context import endpoint_label
from actionrt.auth.models import OAuth2ClientCredentialsConfig
from actionrt.auth.tokens import DEFAULT_LIFETIME, FetchedToken, TokenAuthenticator, usable_lifetime
from actionrt.guard import control_character

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

_AUTH_METHODS = {"header": "client_secret_basic", "body": "client_secret_post"}


class OAuth2ClientCredentialsAuthenticator(TokenAuthenticator):
    """`type: oauth2ClientCredentials`."""

    scheme = "oauth2ClientCredentials"

    def __init__(self, config: OAuth2ClientCredentialsConfig, context: AuthContext) -> None:
        super().__init__(context, injection="bearer", endpoint_label=endpoint_label(config.tokenEndpoint))
        secrets = context.secrets
        self.config = config
        self._endpoint = secrets.compile(config.tokenEndpoint)
        self._client_id = secrets.compile(config.clientId)
        self._client_secret = secrets.compile(config.clientSecret.get_secret_value())
        scope = config.scope_text
        self._scope = secrets.compile(scope) if scope else None
        self._audience = secrets.compile(config.audience) if config.audience else None
        self._auth_method = _AUTH_METHODS[config.clientAuthentication]

    def credentials(self) -> Any:
        return {
            "endpoint": self._endpoint(),
            "clientId": self._client_id(),
            "clientSecret": self._client_secret(),
            "scope": self._scope() if self._scope else None,
            "audience": self._audience() if self._audience else None,
            "clientAuthentication": self._auth_method,
        }

    async def fetch(self) -> FetchedToken:
        extra: dict[str, str] = {}
        if self._scope is not None:
            extra["scope"] = self._scope()
        if self._audience is not None:
            extra["audience"] = self._audience()
        body = prepare_token_request("client_credentials", **extra)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
            "Accept": "application/json",
        }
        client = ClientAuth(self._client_id(), self._client_secret(), self._auth_method)
        url, headers, body = client.prepare("POST", self._endpoint(), headers, body)
        response = await self._context.token_request(
            "POST", url, headers=headers, content=body.encode("utf-8"), label=self.endpoint_label
        )
        data = response.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or control_character(token) is not None:
            raise AuthenticationError(
                f"token endpoint {self.endpoint_label} answered {response.status} without an access_token",
                status=response.status,
            )
        token_type = data.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AuthenticationError(
                f"token endpoint {self.endpoint_label} issued a token of type "
                f"{str(token_type)[:20]!r}, not bearer",
                status=response.status,
            )
        expires_in = _seconds(data.get("expires_in"))
        lifetime = DEFAULT_LIFETIME if expires_in is None else usable_lifetime(expires_in, from_response=True)
        return FetchedToken(token, lifetime)


def _seconds(value: Any) -> float | None:
    """`expires_in` as a number of seconds (some servers send a numeric string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isdigit():
        return float(value)
    return None
