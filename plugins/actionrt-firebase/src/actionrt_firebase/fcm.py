"""`firebase.fcm`: FCM HTTP v1, `POST fcm.googleapis.com/v1/projects/<project>/messages:send`.

The body is `{"message": {token | topic | condition, notification, data, android, apns, webpush}}`;
`data` values are strings only (the template types every data variable `string`, and the engine
turns numbers into strings). `classify_response` reads FCM's error codes
(https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode): UNREGISTERED, INVALID_ARGUMENT,
SENDER_ID_MISMATCH and THIRD_PARTY_AUTH_ERROR are final; UNAVAILABLE and INTERNAL are retried
(with the answer's Retry-After when it has one); QUOTA_EXCEEDED asks for a retry a minute later.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from actionrt.connectors import ConnectorSettings, TemplateConnector, Verdict, error_object
from actionrt.http import HttpResponse
from actionrt.retry import retry_after_seconds
from actionrt_firebase.service_account import FIREBASE_MESSAGING_SCOPE

FCM_URL = "https://fcm.googleapis.com/v1/projects/{project}/messages:send"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# UNAVAILABLE: "retry using exponential backoff ... honor the Retry-After header"; INTERNAL: "retry
# the request following the same requirements as UNAVAILABLE" (FCM ErrorCode reference).
RETRIED = frozenset({"UNAVAILABLE", "INTERNAL"})
# QUOTA_EXCEEDED: "retry using exponential backoff with a minimum initial delay of 1 minute".
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
QUOTA_MINIMUM_DELAY = 60.0
NOT_RETRIED = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"})

# FCM reserves these data keys (and any starting with "google" or "gcm").
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^\d+$")

Target = Literal["token", "topic", "condition"]
_TARGET_SAMPLES = {
    "token": "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1",
    "topic": "news",
    "condition": "'stock-GOOG' in topics || 'industry-tech' in topics",
}
_TARGET_LABELS = {"token": "Device registration token", "topic": "Topic", "condition": "Condition"}


class FcmSettings(ConnectorSettings):
    """`firebase.fcm` settings."""

    projectId: str
    """The Firebase project id (or project number)."""
    serviceAccount: str | None = None
    """`{{ secrets.NAME }}` holding the service-account key file's JSON."""
    serviceAccountFile: str | None = None
    """Or the path of the key file."""
    target: Target = "token"
    """Which target the journey supplies: a registration token, a topic or a condition."""
    notification: bool = True
    """Send a notification (title and body variables); False for data-only messages."""
    data: dict[str, str] = Field(default_factory=dict)
    """Data keys with example values; each becomes an optional string variable `message.data.<key>`."""
    android: dict[str, Any] | None = None
    apns: dict[str, Any] | None = None
    webpush: dict[str, Any] | None = None
    """Constant platform blocks, sent as given (e.g. `android: {priority: high}`)."""
    validateOnly: bool = False
    """FCM checks the message without delivering it (for testing)."""

    @field_validator("projectId")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT.match(value):
            raise ValueError("must be a Firebase project id (lower case, digits, '-') or number")
        return value

    @field_validator("data")
    @classmethod
    def _data_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key in _RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
                raise ValueError(f"data key {key!r} is reserved by FCM")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> FcmSettings:
        if (self.serviceAccount is None) == (self.serviceAccountFile is None):
            raise ValueError("give exactly one of serviceAccount and serviceAccountFile")
        if not self.notification and not self.data:
            raise ValueError("a data-only message (notification: false) needs data keys")
        return self


class Fcm(TemplateConnector):
    """A push message to a device, a topic or a condition."""

    name = "firebase.fcm"
    description = "Firebase Cloud Messaging HTTP v1: POST a message to projects/<project>/messages:send"
    settings_model = FcmSettings

    def template(self, settings: FcmSettings) -> dict[str, Any]:
        message: dict[str, Any] = {settings.target: _TARGET_SAMPLES[settings.target]}
        variables: dict[str, Any] = {f"message.{settings.target}": {"label": _TARGET_LABELS[settings.target]}}
        if settings.notification:
            message["notification"] = {"title": "Your order has shipped", "body": "Track it in the app"}
            variables["message.notification.title"] = {"label": "Title"}
            variables["message.notification.body"] = {"label": "Body"}
        if settings.data:
            message["data"] = dict(settings.data)
            for key in settings.data:
                variables[f"message.data.{key}"] = {"label": key, "optional": True, "type": "string"}
        for block in ("android", "apns", "webpush"):
            value = getattr(settings, block)
            if value is not None:
                message[block] = value
        sample: dict[str, Any] = {"message": message}
        if settings.validateOnly:
            sample["validate_only"] = True
        authentication: dict[str, Any] = {
            "type": "googleServiceAccount",
            "scopes": [FIREBASE_MESSAGING_SCOPE],
        }
        if settings.serviceAccount is not None:
            authentication["serviceAccount"] = settings.serviceAccount
        else:
            authentication["serviceAccountFile"] = settings.serviceAccountFile
        return {
            "description": f"Send a push message through FCM ({settings.target})",
            "endpoint": {"url": FCM_URL.format(project=settings.projectId), "method": "POST"},
            "authentication": authentication,
            "request": {"sample": sample, "variables": variables},
            "response": {"sample": {"name": f"projects/{settings.projectId}/messages/0:1500415314455276"}},
            "errorResponse": {
                "sample": {
                    "error": {
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                        "details": [{"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}],
                    }
                }
            },
        }

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        """FCM's error code decides; None (the default policy) when the answer has none."""
        code = fcm_error_code(response)
        if code is None:
            return None
        error = error_object(response) or {}
        message = error.get("message") if isinstance(error.get("message"), str) else None
        if code == QUOTA_EXCEEDED:
            asked = retry_after_seconds(response.headers.get("retry-after"), time.time()) or 0.0
            return Verdict.retry_later(max(QUOTA_MINIMUM_DELAY, asked), f"fcm:{code}", message)
        if code in RETRIED:
            return Verdict.retry_now(f"fcm:{code}", message)
        if code in NOT_RETRIED:
            return Verdict.do_not_retry(f"fcm:{code}", message)
        return None


def fcm_error_code(response: HttpResponse) -> str | None:
    """The FcmError `errorCode` of an error answer, else its `status` (e.g. `UNAVAILABLE`)."""
    error = error_object(response)
    if error is None:
        return None
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            if isinstance(code, str):
                return code
    status = error.get("status")
    return status if isinstance(status, str) else None
