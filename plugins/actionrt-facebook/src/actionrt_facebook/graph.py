"""What the Facebook connectors share: Graph API settings and the reading of Graph error bodies.

Graph errors come as `{"error": {"message", "type", "code", "error_subcode", "is_transient",
"fbtrace_id"}}`, mostly with HTTP 400 even when waiting would help (rate limits), so the status
alone misleads the default retry policy: the error `code` decides.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from actionrt.connectors import ConnectorSettings, error_object
from actionrt.http import HttpResponse

GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

# Graph error codes that say "try again later": 1 unknown/temporary, 2 service unavailable,
# 4 application rate limit, 17 user rate limit, 32 page rate limit, 341 application limit,
# 613 calls exceeded, 80001-80014 business-use-case rate limits, 1200 Messenger temporary failure.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 1200, *range(80001, 80015)})

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


def classify_graph_error(response: HttpResponse) -> bool | None:
    """Retry Graph's transient errors, never its others; None when the body is not a Graph error."""
    error = error_object(response)
    if error is None:
        return None
    if error.get("is_transient") is True:
        return True
    code = error.get("code")
    if not isinstance(code, int):
        return None
    return code in TRANSIENT_CODES
