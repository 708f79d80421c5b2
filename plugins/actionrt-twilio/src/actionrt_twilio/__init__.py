"""actionrt-twilio: the `twilio.sms` connector (entry point `twilio`), on the public plugin API only.

Twilio's Messages API (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
`POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json`, a form-encoded body
(`To`, `From` or `MessagingServiceSid`, `Body`, `StatusCallback`), HTTP Basic with the account SID
and auth token, or an API key SID and secret (https://www.twilio.com/docs/iam/api-keys). Errors are
`{"code", "message", "more_info", "status"}` (https://www.twilio.com/docs/usage/twilios-response).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import field_validator, model_validator

from actionrt import hookimpl
from actionrt.connectors import Connector, ConnectorSettings, TemplateConnector, Verdict
from actionrt.http import HttpResponse
from actionrt.retry import retry_after_seconds

__all__ = ["TwilioSms", "register_connectors"]

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""

MESSAGES_URL = "https://api.twilio.com/2010-04-01/Accounts/{account}/Messages.json"
# 21211 "Invalid 'To' Phone Number" (https://www.twilio.com/docs/api/errors/21211): the number is
# not a valid phone number; sending it again cannot succeed. Every other 4xx Twilio code is final too.
INVALID_TO = 21211
# 20429 "Too many requests": "Requests that receive 429 responses aren't processed and are safe to
# retry after backing off" (https://www.twilio.com/docs/api/errors/20429). "wait for a short period
# of time": a second when the answer has no Retry-After.
TOO_MANY_REQUESTS = 20429
SHORT_WAIT = 1.0

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")


class SmsSettings(ConnectorSettings):
    """`twilio.sms` settings (the token or key secret normally `{{ secrets.NAME }}`)."""

    accountSid: str
    """The account SID (`AC...`): in the URL, and the Basic username with an auth token."""
    authToken: str | None = None
    apiKeySid: str | None = None
    """Or an API key (`SK...`) and its secret: Twilio's recommendation for production."""
    apiKeySecret: str | None = None
    sender: str | None = None
    """The `From` number (E.164, e.g. `+15017122661`) or alphanumeric sender id..."""
    messagingServiceSid: str | None = None
    """... or a Messaging Service (`MG...`) that picks the sender."""
    statusCallback: str | None = None
    """A URL Twilio calls with the message's delivery status."""

    @field_validator("accountSid")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _ACCOUNT_SID.match(value):
            raise ValueError("must be the account SID: AC followed by 32 hex digits")
        return value

    @model_validator(mode="after")
    def _one_credential_one_sender(self) -> SmsSettings:
        key = self.apiKeySid is not None or self.apiKeySecret is not None
        if (self.authToken is not None) == key:
            raise ValueError("give authToken, or apiKeySid and apiKeySecret")
        if key and (self.apiKeySecret is None or not _API_KEY_SID.match(self.apiKeySid or "")):
            raise ValueError("an API key needs apiKeySid (SK followed by 32 hex digits) and apiKeySecret")
        if (self.sender is None) == (self.messagingServiceSid is None):
            raise ValueError("give exactly one of sender and messagingServiceSid")
        return self


class TwilioSms(TemplateConnector):
    """An SMS to one number; Twilio's error codes decide the retry."""

    name = "twilio.sms"
    description = "Twilio Messages API: POST an SMS to api.twilio.com/2010-04-01/Accounts/<sid>/Messages.json"
    settings_model = SmsSettings
    body_encoding = "form"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def template(self, settings: SmsSettings) -> dict[str, Any]:
        sample: dict[str, Any] = {"To": "+15558675310", "Body": "Your order has shipped"}
        if settings.sender is not None:
            sample["From"] = settings.sender
        else:
            sample["MessagingServiceSid"] = settings.messagingServiceSid
        if settings.statusCallback is not None:
            sample["StatusCallback"] = settings.statusCallback
        username, password = (
            (settings.accountSid, settings.authToken)
            if settings.authToken is not None
            else (settings.apiKeySid, settings.apiKeySecret)
        )
        return {
            "description": "Send an SMS through Twilio",
            "endpoint": {"url": MESSAGES_URL.format(account=settings.accountSid), "method": "POST"},
            "authentication": {"type": "basic", "username": username, "password": password},
            "request": {
                "sample": sample,
                "variables": {"To": {"label": "Phone number (E.164)"}, "Body": {"label": "Message"}},
            },
            "response": {"sample": {"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued"}},
            "errorResponse": {
                "sample": {"code": INVALID_TO, "message": "Invalid 'To' Phone Number", "status": 400}
            },
        }

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        """20429 or 429: retry after a short wait; other 4xx Twilio codes: final; 5xx: default."""
        if response.status < 400:
            return None
        error = _error(response)
        code = error.get("code") if isinstance(error.get("code"), int) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        reason = f"twilio:{code}" if code is not None else None
        if code == TOO_MANY_REQUESTS or response.status == 429:
            asked = retry_after_seconds(response.headers.get("retry-after"), self._clock())
            return Verdict.retry_later(SHORT_WAIT if asked is None else asked, reason, message)
        if response.status >= 500 or code is None:
            return None
        return Verdict.do_not_retry(reason, message)


def _error(response: HttpResponse) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(TwilioSms())
