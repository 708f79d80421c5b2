"""The Slack connectors: `slack.webhook` (incoming webhooks) and `slack.postMessage` (Web API).

Incoming webhooks answer `200 ok` as plain text and report errors with HTTP statuses; their 400
and 410 are final even under the reference retry rule. `chat.postMessage` answers HTTP 200 even
when it failed, with `{"ok": false, "error": "..."}`: `classify_response` turns those into
failures with Slack's code (`slack:channel_not_found`), retried only where Slack says a retry is
safe; a rate limit keeps its `Retry-After`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import field_validator

from actionrt.connectors import ConnectorSettings, TemplateConnector, Verdict
from actionrt.http import HttpResponse
from actionrt.retry import retry_after_seconds
from actionrt.secrets import SECRET_REF

WEBHOOK_PREFIX = "https://hooks.slack.com/services/"
POST_MESSAGE_URL = "https://slack.com/api/chat.postMessage"

# Incoming-webhook statuses that say the request or the webhook itself is wrong
# (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks).
WEBHOOK_FINAL_STATUSES = frozenset({400, 410})

# chat.postMessage `error` codes (https://api.slack.com/methods/chat.postMessage#errors) worth
# another try; every other `ok: false` is final (channel_not_found, not_in_channel, invalid_auth...).
# Not `internal_error` nor `fatal_error`: "It's possible some aspect of the operation succeeded
# before the error was raised" — a retry could post the message twice.
TRANSIENT_ERRORS = frozenset({"service_unavailable", "request_timeout"})
# "The request has been ratelimited. Refer to the Retry-After header for when to retry the request."
RATE_LIMITED_ERRORS = frozenset({"ratelimited", "rate_limited"})


def _is_secret_reference(text: str) -> bool:
    return SECRET_REF.fullmatch(text.strip()) is not None


class WebhookSettings(ConnectorSettings):
    """`slack.webhook` settings."""

    webhookUrl: str
    """The webhook URL, or (better: its path is the credential) a `{{ secrets.NAME }}` holding it."""
    text: str = "Hello from actionrt"
    """The example message text (the `text` variable's sample)."""

    @field_validator("webhookUrl")
    @classmethod
    def _slack_webhook(cls, value: str) -> str:
        if _is_secret_reference(value) or value.startswith(WEBHOOK_PREFIX):
            return value
        raise ValueError(f"must start with {WEBHOOK_PREFIX} or be a {{{{ secrets.NAME }}}} reference")


class SlackWebhook(TemplateConnector):
    """Post a message to a channel through an incoming webhook."""

    name = "slack.webhook"
    description = "Slack incoming webhook: POST {text, blocks} to hooks.slack.com"
    settings_model = WebhookSettings

    def template(self, settings: WebhookSettings) -> dict[str, Any]:
        if _is_secret_reference(settings.webhookUrl):
            # The URL is read at send time by the `slackWebhook` scheme, so it is never shown.
            url, authentication = WEBHOOK_PREFIX, {"type": "slackWebhook", "url": settings.webhookUrl}
        else:
            url, authentication = settings.webhookUrl, {"type": "none"}
        return {
            "description": "Post a message to Slack through an incoming webhook",
            "endpoint": {"url": url, "method": "POST"},
            "authentication": authentication,
            "request": {
                "sample": {"text": settings.text},
                "variables": {"text": {"label": "Message"}},
            },
        }

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        """400 (`invalid_payload`, `user_not_found`) and 410 (`channel_is_archived`,
        `no_active_hooks`) are final whatever the retry policy: the same request can't succeed.
        Everything else (429 with Retry-After, 5xx `rollup_error`): the engine's policy."""
        if response.status not in WEBHOOK_FINAL_STATUSES:
            return None
        text = response.content.decode("utf-8", "replace").strip()
        return Verdict.do_not_retry(f"slack:{text}" if text.isidentifier() else None, None)


class PostMessageSettings(ConnectorSettings):
    """`slack.postMessage` settings."""

    token: str
    """The bot token (`xoxb-...`), normally `{{ secrets.SLACK_BOT_TOKEN }}`."""
    channel: str | None = None
    """A fixed channel id or name; without it the channel is a variable of each call."""
    text: str = "Hello from actionrt"


class SlackPostMessage(TemplateConnector):
    """`chat.postMessage` with a bot token; `ok: false` answers are failures."""

    name = "slack.postMessage"
    description = "Slack Web API chat.postMessage with a bot token"
    settings_model = PostMessageSettings

    def template(self, settings: PostMessageSettings) -> dict[str, Any]:
        variables: dict[str, Any] = {"text": {"label": "Message"}}
        if settings.channel is None:
            variables["channel"] = {"label": "Channel"}
        return {
            "description": "Post a message to a Slack channel (chat.postMessage)",
            "endpoint": {
                "url": POST_MESSAGE_URL,
                "method": "POST",
                # Slack asks for the charset on JSON bodies (else a `missing_charset` warning).
                "headers": [{"name": "Content-Type", "value": "application/json; charset=utf-8"}],
            },
            "authentication": {"type": "bearer", "token": settings.token},
            "request": {
                "sample": {"channel": settings.channel or "C0123456789", "text": settings.text},
                "variables": variables,
            },
            "response": {"sample": {"ok": True, "channel": "C0123456789", "ts": "1503435956.000247"}},
            "errorResponse": {"sample": {"ok": False, "error": "channel_not_found"}},
        }

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        """`ok: false` is a failure: retried for transient errors only. Anything else: default."""
        if response.status != 200 or not response.content.startswith(b"{"):
            return None  # 429 and 5xx: the default policy (with Retry-After) fits
        try:
            body = json.loads(response.content)
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("ok") is not False:
            return None
        error = body.get("error")
        code = f"slack:{error}" if isinstance(error, str) else None
        if error in RATE_LIMITED_ERRORS:
            asked = retry_after_seconds(response.headers.get("retry-after"), time.time())
            return Verdict.retry_now(code) if asked is None else Verdict.retry_later(asked, code)
        if error in TRANSIENT_ERRORS:
            return Verdict.retry_now(code)
        return Verdict.do_not_retry(code)
