"""actionrt-slack: Slack connectors (`slack.webhook`, `slack.postMessage`) and the `slackWebhook`
authentication scheme, registered through actionrt's hooks (entry point `slack`)."""

from __future__ import annotations

from collections.abc import Callable

from actionrt import hookimpl
from actionrt.auth.base import AuthScheme
from actionrt.connectors import Connector
from actionrt_slack.connectors import SlackPostMessage, SlackWebhook
from actionrt_slack.webhook_auth import SCHEME

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""
__all__ = ["SlackPostMessage", "SlackWebhook", "register_auth_schemes", "register_connectors"]


@hookimpl
def register_auth_schemes(register: Callable[[AuthScheme], None]) -> None:
    register(SCHEME)


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(SlackWebhook())
    register(SlackPostMessage())
