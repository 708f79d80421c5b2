"""actionrt-sendgrid: the `sendgrid.mail` connector (entry point `sendgrid`), on the public plugin API.

SendGrid's v3 Mail Send (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send):
`POST https://api.sendgrid.com/v3/mail/send` (EU subusers: `api.eu.sendgrid.com`) with
`Authorization: Bearer <API key>` and `{personalizations, from, subject, content | template_id}`;
`202 Accepted` with an empty body when queued. A journey maps flat fields (`to`, `subject`, `text`,
or a template's `dynamic_template_data`); `shape_request` puts them where Mail Send wants them
(`personalizations`, `content`): its personalizations are arrays of arrays, which an action's
variables cannot address. Errors are `{"errors": [{"message", "field",
"help"}]}`; rate limits answer 429 with `X-RateLimit-Reset`, a Unix time
(https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from actionrt import hookimpl
from actionrt.connectors import Connector, ConnectorSettings, TemplateConnector, Verdict
from actionrt.http import HttpRequest, HttpResponse
from actionrt.retry import retry_after_seconds

__all__ = ["SendgridMail", "register_connectors"]

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""

HOSTS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
# "You will no longer be able to make request against that endpoint for the duration of that
# refresh period": the wait is until X-RateLimit-Reset. Other 4xx (400 bad request, 401/403 key,
# 413 too large) cannot succeed when sent again; 5xx: the default policy.
RATE_LIMITED = 429


class MailSettings(ConnectorSettings):
    """`sendgrid.mail` settings (the API key normally `{{ secrets.SENDGRID_API_KEY }}`)."""

    apiKey: str
    fromEmail: str
    """The verified sender address."""
    fromName: str | None = None
    templateId: str | None = None
    """A dynamic template (`d-...`): the journey then maps `dynamic_template_data`, not a body."""
    templateData: dict[str, Any] = Field(default_factory=lambda: {"first_name": "Ada", "order": "1001"})
    """The template's fields with example values: each a variable `dynamic_template_data.<field>`."""
    subject: str = "Your order has shipped"
    region: Literal["global", "eu"] = "global"


class SendgridMail(TemplateConnector):
    """One email (to one or more recipients), plain text or a dynamic template."""

    name = "sendgrid.mail"
    description = "SendGrid v3 Mail Send: POST an email to api.sendgrid.com/v3/mail/send"
    settings_model = MailSettings

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def template(self, settings: MailSettings) -> dict[str, Any]:
        sender: dict[str, Any] = {"email": settings.fromEmail}
        if settings.fromName:
            sender["name"] = settings.fromName
        sample: dict[str, Any] = {"to": [{"email": "ada@example.com", "name": "Ada"}], "from": sender}
        variables: dict[str, Any] = {"to": {"label": "Recipients"}}
        if settings.templateId is not None:
            sample["template_id"] = settings.templateId
            sample["dynamic_template_data"] = dict(settings.templateData)
            for key in settings.templateData:
                variables[f"dynamic_template_data.{key}"] = {"label": key}
        else:
            sample["subject"] = settings.subject
            sample["text"] = "Track it in the app."
            variables["subject"] = {"label": "Subject"}
            variables["text"] = {"label": "Text"}
        return {
            "description": "Send an email through SendGrid",
            "endpoint": {"url": f"{HOSTS[settings.region]}/v3/mail/send", "method": "POST"},
            "authentication": {"type": "bearer", "token": settings.apiKey},
            "request": {"sample": sample, "variables": variables},
            "errorResponse": {"sample": {"errors": [{"message": "Invalid email", "field": "from.email"}]}},
        }

    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
        """`to` (and `dynamic_template_data`) into one personalization; `text` into `content`."""
        if request.content is None:
            return
        body = json.loads(request.content)
        personalization = {"to": body.pop("to")}
        if "dynamic_template_data" in body:
            personalization["dynamic_template_data"] = body.pop("dynamic_template_data")
        body["personalizations"] = [personalization]
        if "text" in body:
            body["content"] = [{"type": "text/plain", "value": body.pop("text")}]
        request.content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        """429: retry at `X-RateLimit-Reset`; other 4xx: final, with SendGrid's message; 5xx: default."""
        if response.status < 400 or response.status >= 500:
            return None
        message = _first_message(response)
        code = f"sendgrid:{response.status}"
        if response.status == RATE_LIMITED:
            return Verdict.retry_later(self._reset_wait(response), code, message)
        return Verdict.do_not_retry(code, message)

    def _reset_wait(self, response: HttpResponse) -> float:
        reset = response.headers.get("x-ratelimit-reset", "").strip()
        if reset.isdigit():
            return max(0.0, int(reset) - self._clock())
        asked = retry_after_seconds(response.headers.get("retry-after"), self._clock())
        return 1.0 if asked is None else asked


def _first_message(response: HttpResponse) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        field = f" ({first['field']})" if isinstance(first.get("field"), str) else ""
        return f"{first.get('message')}{field}" if isinstance(first.get("message"), str) else None
    return None


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(SendgridMail())
