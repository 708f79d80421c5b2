"""The built-in authentication schemes and secret providers, registered through the same hooks
third-party plugins use (`actionrt.plugins.BUILTIN_PLUGINS` lists this module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actionrt.auth.base import Authenticator, AuthScheme
from actionrt.auth.models import (
    ApiKeyConfig,
    BasicAuthConfig,
    BearerConfig,
    CustomAuthorizationConfig,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
)
from actionrt.hookspecs import hookimpl
from actionrt.secrets import FileSecrets, SecretProvider

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

# Each builder imports its module when a Runtime builds an authenticator, so loading the
# plugin (and `import actionrt`) stays cheap: authlib and the JOSE code load only when used.


def build_none(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.basic import NoAuthenticator

    return NoAuthenticator()


def build_basic(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.basic import BasicAuthenticator

    return BasicAuthenticator(config, context)


def build_api_key(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.apikey import ApiKeyAuthenticator

    return ApiKeyAuthenticator(config, context)


def build_bearer(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.bearer import BearerAuthenticator

    return BearerAuthenticator(config, context)


def build_custom(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.custom import build_custom_authenticator

    return build_custom_authenticator(config, context)


def build_oauth2(config: Any, context: AuthContext) -> Authenticator:
    from actionrt.auth.oauth2 import OAuth2ClientCredentialsAuthenticator

    return OAuth2ClientCredentialsAuthenticator(config, context)


BUILTIN_SCHEMES: tuple[AuthScheme, ...] = (
    AuthScheme("none", NoAuthConfig, build_none, "No authentication."),
    AuthScheme("basic", BasicAuthConfig, build_basic, "HTTP Basic: username and password."),
    AuthScheme("apiKey", ApiKeyConfig, build_api_key, "An API key in a header or query parameter."),
    AuthScheme("bearer", BearerConfig, build_bearer, "A static bearer token."),
    AuthScheme(
        "customAuthorization",
        CustomAuthorizationConfig,
        build_custom,
        "A token endpoint call, then the token injected (incl. subType certificateCredential).",
    ),
    AuthScheme(
        "oauth2ClientCredentials",
        OAuth2ClientCredentialsConfig,
        build_oauth2,
        "OAuth 2.0 client credentials grant; the token sent as a bearer.",
    ),
)


@hookimpl
def register_auth_schemes(register: Callable[[AuthScheme], None]) -> None:
    for scheme in BUILTIN_SCHEMES:
        register(scheme)


@hookimpl
def register_secret_providers(register: Callable[[SecretProvider], None]) -> None:
    register(FileSecrets())
