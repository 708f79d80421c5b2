"""`facebook.messenger`: the Messenger Send API, `POST graph.facebook.com/<version>/<page>/messages`.

A Page sends `{recipient: {id: <PSID>}, messaging_type, message: {text}}` with its Page access
token; `MESSAGE_TAG` messages (outside the 24-hour window) also carry a `tag`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from actionrt.connectors import TemplateConnector, Verdict
from actionrt.http import HttpResponse
from actionrt_facebook.graph import GRAPH_URL, GraphSettings, access_token_auth, classify_graph_error

MessagingType = Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"]


class MessengerSettings(GraphSettings):
    """`facebook.messenger` settings (`accessToken` is the Page access token)."""

    pageId: str = "me"
    """The Page id (`me`: the Page the token belongs to)."""
    messagingType: MessagingType = "UPDATE"
    tag: str | None = None
    """Required with `MESSAGE_TAG`, e.g. `ACCOUNT_UPDATE`, `POST_PURCHASE_UPDATE`."""

    @model_validator(mode="after")
    def _tag_with_message_tag(self) -> MessengerSettings:
        if (self.messagingType == "MESSAGE_TAG") != (self.tag is not None):
            raise ValueError("tag is required with messagingType MESSAGE_TAG, and only then")
        return self


class Messenger(TemplateConnector):
    """A text message from a Page to a person (PSID)."""

    name = "facebook.messenger"
    description = "Messenger Send API: POST a message to graph.facebook.com/<version>/<page>/messages"
    settings_model = MessengerSettings

    def template(self, settings: MessengerSettings) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "recipient": {"id": "1254459154682919"},
            "messaging_type": settings.messagingType,
            "message": {"text": "Your order has shipped"},
        }
        if settings.tag is not None:
            sample["tag"] = settings.tag
        return {
            "description": "Send a Messenger message from a Page",
            "endpoint": {
                "url": f"{GRAPH_URL}/{settings.apiVersion}/{settings.pageId}/messages",
                "method": "POST",
            },
            "authentication": access_token_auth(settings.accessToken),
            "request": {
                "sample": sample,
                "variables": {
                    "recipient.id": {"label": "Recipient PSID"},
                    "message.text": {"label": "Message"},
                },
            },
            "response": {"sample": {"recipient_id": "1254459154682919", "message_id": "m_AG5Hz2U"}},
            "errorResponse": {
                "sample": {
                    "error": {
                        "message": "No matching user found",
                        "type": "OAuthException",
                        "code": 100,
                        "error_subcode": 2018001,
                        "fbtrace_id": "AbCdEfGh123",
                    }
                }
            },
        }

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        return classify_graph_error(response)
