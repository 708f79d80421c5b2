"""actionrt-epsilon: the `epsilon.message` connector (entry point `epsilon`).

Epsilon (Harmony) issues tokens by the OAuth 2.0 password grant, the flow reference.md §3 prints:
a form POST to `/Epsilon/oauth2/access_token` with `Authorization: Basic base64(client id:secret)`
and `grant_type=password`, `username`, `password`, `scope`. The connector is only a template: the
built-in `customAuthorization` scheme runs that flow, and the message send is a plain JSON PUT to
`/<version>/messages/<message id>/send` with the tenant's `X-OUID` header. No code is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from actionrt import hookimpl
from actionrt.connectors import Connector, ConnectorSettings, TemplateConnector

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""
__all__ = ["EpsilonMessage", "register_connectors"]

# Harmony's public hosts per region: the token service, and the messaging API.
HOSTS = {
    "us": ("https://api-public.epsilon.com", "https://api.harmony.epsilon.com"),
    "eu": ("https://api-public.eu.epsilon.com", "https://api.harmony.eu.epsilon.com"),
}
# The scope Epsilon's public clients send to /Epsilon/oauth2/access_token (the PHP, Java, .NET and
# Node integrations on GitHub all send `'scope' => 'cn mail sn givenname uid employeeNumber'`);
# Epsilon's API reference is not public, and reference.md's example omits `sn` (the surname).
DEFAULT_SCOPE = "cn mail sn givenname uid employeeNumber"


class EpsilonSettings(ConnectorSettings):
    """`epsilon.message` settings (credentials normally `{{ secrets.NAME }}` references)."""

    clientId: str
    clientSecret: str
    username: str
    password: str
    ouid: str
    """The organisational unit id sent as `X-OUID`."""
    messageId: str
    """The Harmony message (real-time message) to send."""
    region: Literal["us", "eu"] = "us"
    apiVersion: Literal["v3", "v4", "v5"] = "v5"
    scope: str = DEFAULT_SCOPE
    tokenEndpoint: str | None = None
    """Overrides the region's token endpoint (a tenant-specific authorization server)."""


class EpsilonMessage(TemplateConnector):
    """Send a Harmony message to one or more recipients, with a password-grant token."""

    name = "epsilon.message"
    description = "Epsilon Harmony: send a message (PUT .../messages/<id>/send), password-grant token"
    settings_model = EpsilonSettings

    def template(self, settings: EpsilonSettings) -> dict[str, Any]:
        token_host, api_host = HOSTS[settings.region]
        token_endpoint = settings.tokenEndpoint or f"{token_host}/Epsilon/oauth2/access_token"
        return {
            "description": "Send an Epsilon Harmony message",
            "endpoint": {
                "url": f"{api_host}/{settings.apiVersion}/messages/{settings.messageId}/send",
                "method": "PUT",
                "headers": [
                    {"name": "X-OUID", "value": settings.ouid},
                    {"name": "Accept", "value": "application/json"},
                ],
            },
            # reference.md §3, second example: the documented customAuthorization JSON as-is.
            "authentication": {
                "type": "customAuthorization",
                "authorizationType": "Bearer",
                "endpoint": token_endpoint,
                "method": "POST",
                "headers": {
                    "Authorization": f"Basic EncodeBase64({settings.clientId}:{settings.clientSecret})"
                },
                "body": {
                    "bodyType": "form",
                    "bodyParams": {
                        "scope": settings.scope,
                        "grant_type": "password",
                        "username": settings.username,
                        "password": settings.password,
                    },
                },
                "tokenInResponse": "json://access_token",
                "cacheDuration": {"expiryInResponse": "json://expires_in", "timeUnit": "seconds"},
            },
            "request": {
                "sample": {
                    "recipients": [{"customerKey": "ada@example.com", "emailAddress": "ada@example.com"}]
                },
                "variables": {"recipients": {"label": "Recipients"}},
            },
        }


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(EpsilonMessage())
