"""Following redirects: which method, body and headers the next request carries.

A redirect to another origin carries only the headers of `CROSS_ORIGIN_HEADERS`: we can't know
which custom header is a credential, so every other header stays with the origin the action was
written for.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from actionrt.http.errors import DestinationRefusedError
from actionrt.http.types import UrlPolicy

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The only headers a redirect to another origin (scheme, host or port) keeps. An allow-list,
# not a deny-list of credential headers: an apiKey header (`x-api-key`), a customAuthorization
# `tokenTarget` or a constant header filled from a secret can have any name, so no list of
# credential names can be complete. These describe the payload and the wanted answer and never
# carry a credential. Same-origin redirects keep every header.
CROSS_ORIGIN_HEADERS = frozenset(
    {"content-type", "accept", "accept-encoding", "accept-language", "user-agent", "charset"}
)


@dataclass(slots=True)
class Hop:
    """What the next request of a redirect chain carries."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


def follow_redirect(hop: Hop, status: int, location: str, policy: UrlPolicy | None) -> Hop:
    """The request to send after a redirect answer, checked by the destination policy.

    301/302 turn a POST into a GET and 303 turns anything but HEAD into a GET (what browsers,
    httpx and requests do), dropping the body; 307/308 keep method and body. When the redirect
    leaves the original scheme, host or port, only `CROSS_ORIGIN_HEADERS` are kept. The target
    URL is the Location alone (resolved against the current URL), so a query-string credential
    of the original URL never travels with it.
    """
    target = urljoin(hop.url, location)
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise DestinationRefusedError(f"redirect to a non-HTTP URL refused ({host_of(target)})")
    if policy is not None:
        policy.check_url(target)
    method, content, headers = hop.method, hop.content, hop.headers
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if _origin(target) != _origin(hop.url):
        headers = {k: v for k, v in headers.items() if k.lower() in CROSS_ORIGIN_HEADERS}
    return Hop(method, target, headers, content)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def host_of(url: str) -> str:
    """The host and port of `url`, for error messages (never the path or query)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"
