"""The `slackWebhook` authentication scheme: the webhook URL is the credential.

An incoming webhook's path is its secret; this scheme reads the URL from a secret at send time
and puts it on the request, so action files, listings and reports only ever show
`https://hooks.slack.com/services/`. The URL must stay on that prefix: a secret pointing
elsewhere is refused (the destination policy checked the prefix's host, not the secret's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from actionrt.auth.base import AuthCheck, AuthenticationError, AuthScheme
from actionrt.auth.models import AuthConfig, Secret
from actionrt.http import HttpRequest
from actionrt.secrets import MissingSecretError

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

WEBHOOK_PREFIX = "https://hooks.slack.com/services/"


class SlackWebhookConfig(AuthConfig):
    """`{type: slackWebhook, url: "{{ secrets.SLACK_WEBHOOK_URL }}"}`."""

    type: Literal["slackWebhook"]
    url: Secret


class SlackWebhookAuthenticator:
    """Replaces the request URL by the webhook URL read from its secret (re-read after a 401)."""

    def __init__(self, config: SlackWebhookConfig, context: AuthContext) -> None:
        self._url = context.secrets.compile(config.url.get_secret_value())
        self._resolved: str | None = None

    def _webhook_url(self) -> str:
        url = self._resolved
        if url is None:
            try:
                url = self._url().strip()
            except MissingSecretError as exc:
                raise AuthenticationError(str(exc)) from None
            if not url.startswith(WEBHOOK_PREFIX) or any(c in url for c in "?# \r\n"):
                raise AuthenticationError(f"the webhook URL secret must be a {WEBHOOK_PREFIX}... URL")
            self._resolved = url
        return url

    async def apply(self, request: HttpRequest) -> None:
        request.url = self._webhook_url()

    def invalidate(self, request: HttpRequest | None = None) -> None:
        self._resolved = None  # re-read the secret: it may have been rotated

    async def check(self) -> AuthCheck:
        try:
            self._webhook_url()
        except AuthenticationError as exc:
            return AuthCheck(False, str(exc))
        return AuthCheck(True, f"would post to {WEBHOOK_PREFIX}*** (URL read from its secret)")

    def __repr__(self) -> str:
        return "SlackWebhookAuthenticator(url=***)"


def build(config: Any, context: AuthContext) -> SlackWebhookAuthenticator:
    return SlackWebhookAuthenticator(config, context)


SCHEME = AuthScheme(
    "slackWebhook",
    SlackWebhookConfig,
    build,
    "A Slack incoming-webhook URL read from a secret at send time.",
)
