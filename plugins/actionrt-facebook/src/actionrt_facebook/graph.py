"""What the Facebook connectors share: Graph API settings and the reading of Graph error bodies.

Graph errors come as `{"error": {"message", "type", "code", "error_subcode", "is_transient",
"fbtrace_id"}}`, mostly with HTTP 400 even when waiting would help (rate limits), so the status
alone misleads the default retry policy: the error `code` decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import field_validator

from actionrt.connectors import ConnectorSettings, Verdict, error_object
from actionrt.http import HttpResponse

GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

# Graph's rate-limit codes: 4 application, 17 user, 32 page, 341 application limit, 613 "calls
# within one hour exceeded", 80001-80014 business-use-case limits. https://developers.facebook.com/docs/graph-api/overview/rate-limiting/
# "the API will return an error code until enough time has passed for the call count to drop below
# the limit" — in a rolling one-hour window: retrying within the call only spends more quota.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, *range(80001, 80015)})
# Temporary errors worth retrying at once: 1 unknown/temporary, 2 service unavailable,
# 1200 Messenger temporary send failure (https://developers.facebook.com/docs/graph-api/guides/error-handling/).
TRANSIENT_CODES = frozenset({1, 2, 1200})
RATE_LIMIT_WINDOW = 3600.0
"""Seconds to wait when no usage header says how long: the whole rolling window."""

_VERSION = re.compile(r"^v\d+\.\d+$")


class GraphSettings(ConnectorSettings):
    """Settings every Graph API connector takes."""

    accessToken: str
    """The access token (a system-user token, or a Page token for Messenger): a secret reference."""
    apiVersion: str = DEFAULT_API_VERSION
    """The Graph API version in the URL, e.g. `v21.0`."""

    @field_validator("apiVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("must look like v21.0")
        return value


def access_token_auth(token: str) -> dict[str, str]:
    """The Graph API's `access_token` query parameter, as an `apiKey` authentication block."""
    return {"type": "apiKey", "name": "access_token", "value": token, "location": "query"}


def classify_graph_error(response: HttpResponse) -> Verdict | None:
    """Graph's error code decides: rate limits retry later (by the usage headers), temporary
    errors now, all others never. None when the body is not a Graph error."""
    error = error_object(response)
    if error is None:
        return None
    code = error.get("code")
    message = error.get("message") if isinstance(error.get("message"), str) else None
    reason = f"graph:{code}" if isinstance(code, int) else None
    if isinstance(code, int) and code in RATE_LIMIT_CODES:
        return Verdict.retry_later(regain_access_seconds(response), reason, message)
    if error.get("is_transient") is True or (isinstance(code, int) and code in TRANSIENT_CODES):
        return Verdict.retry_now(reason, message)
    if reason is None:
        return None
    return Verdict.do_not_retry(reason, message)


def regain_access_seconds(response: HttpResponse) -> float:
    """How long a rate-limited caller waits, from Graph's usage headers (rate-limiting page):
    `X-Business-Use-Case-Usage` entries' `estimated_time_to_regain_access` ("Time, in minutes,
    until calls will not longer be throttled"), or `X-Ad-Account-Usage`'s `reset_time_duration`
    (seconds). `X-App-Usage` carries percentages only: then the whole one-hour window."""
    waits: list[float] = []
    buc = _json_header(response, "x-business-use-case-usage")
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else ():
                minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                if isinstance(minutes, int | float) and minutes > 0:
                    waits.append(minutes * 60.0)
    ad_account = _json_header(response, "x-ad-account-usage")
    if isinstance(ad_account, dict):
        seconds = ad_account.get("reset_time_duration")
        if isinstance(seconds, int | float) and seconds > 0:
            waits.append(float(seconds))
    return max(waits) if waits else RATE_LIMIT_WINDOW


def _json_header(response: HttpResponse, name: str) -> Any:
    value = response.headers.get(name)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
