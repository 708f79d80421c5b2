"""Who may talk to the service: the Host check against DNS rebinding, the API token, the
console's session cookie, and CSRF protection for every state-changing request.

Rules, in order, for each HTTP request:
1. When bound to loopback, the Host header must name a loopback host.
2. With an API token configured, every route but the static files, the login page, the health
   check and /openapi.json needs `Authorization: Bearer <token>` or the console session cookie.
3. A state-changing request (POST, PUT, PATCH, DELETE) not authorised by the bearer token is
   refused when its Origin is another origin or Sec-Fetch-Site says it came from another site.
   It must also repeat the CSRF token in `X-CSRF-Token` (required when it carries the console's
   cookies) or, without cookies, send a JSON body: a cross-site form can do neither, with or
   without an Origin header.
4. Over TLS every cookie the service sets is `Secure`. The session cookie is derived from the
   API token, so changing the token signs every browser out.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "actionrt_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "actionrt_session"
TOKEN_ENV = "ACTIONRT_API_TOKEN"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PREFIXES = ("/static/", "/console/login", "/healthz", "/openapi.json")
# Exempt from the CSRF header: it is a plain form post that checks its own csrf_token field.
FORM_POSTS = frozenset({"/console/login"})


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP addresses only. A name is never judged by how it
    starts: `127.0.0.1.attacker.example` may resolve (or be rebound) to anything."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """What the middleware enforces: the API token (None: loopback use without one)."""

    api_token: str | None
    loopback_only: bool

    def session_value(self) -> str:
        """The console session cookie: derived from the token, so rotating it logs everyone out."""
        assert self.api_token is not None
        return hmac.new(self.api_token.encode(), b"actionrt console session", hashlib.sha256).hexdigest()

    def token_matches(self, presented: str) -> bool:
        return self.api_token is not None and hmac.compare_digest(presented.encode(), self.api_token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is treated as no cookies
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _host_name(host_header: str) -> str:
    return urlsplit("//" + host_header).hostname or ""


@functools.lru_cache(maxsize=256)
def _loopback_host(host_header: str) -> bool:
    """`is_loopback` of a Host header's name (a client sends the same few Host values)."""
    return is_loopback(_host_name(host_header))


class SecurityMiddleware:
    """Pure ASGI middleware applying `SecurityPolicy`; also issues the CSRF cookie."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        host = headers.get("host", "")
        if self.policy.loopback_only and not is_loopback(_host_name(host)):
            await _refuse(send, 403, "this service answers only to a loopback Host (127.0.0.1 or localhost)")
            return
        cookies = _cookies(headers)
        bearer = headers.get("authorization", "")
        by_token = bearer[:7].lower() == "bearer " and self.policy.token_matches(bearer[7:].strip())
        by_session = self.policy.api_token is not None and hmac.compare_digest(
            cookies.get(SESSION_COOKIE, ""), self.policy.session_value()
        )
        if (
            self.policy.api_token is not None
            and not (by_token or by_session)
            and not path.startswith(OPEN_PREFIXES)
        ):
            if method == "GET" and (path == "/" or path.startswith("/console")):
                await _redirect(send, "/console/login")
            else:
                await _refuse(send, 401, "missing or wrong API token", {"www-authenticate": "Bearer"})
            return
        if method in UNSAFE_METHODS and not by_token:
            reason = _cross_site(headers, host)
            if reason is None and path not in FORM_POSTS:
                reason = _csrf_refusal(headers, cookies, by_session)
            if reason is not None:
                await _refuse(send, 403, reason)
                return
        csrf = cookies.get(CSRF_COOKIE) or ""
        # Only the console's pages hand out the cookie: API clients never carry it by accident.
        new_cookie = not csrf and (path == "/" or path.startswith("/console"))
        if not csrf:
            csrf = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = csrf
        scope["state"]["authorised_by"] = "token" if by_token else "session" if by_session else "none"

        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                if new_cookie:
                    cookie = f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode("latin-1")))
                if secure:
                    message["headers"] = [_secure_cookie(k, v) for k, v in message.get("headers", [])]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def admits_plainly(
    policy: SecurityPolicy, host: str, authorization: str, content_type: str, browser_headers: bool
) -> bool:
    """True for a state-changing API request that `SecurityMiddleware` lets through with no
    cookie to issue and nothing to remember: a loopback Host (when loopback only), the bearer
    token (when one is set) or else a JSON body, and no `browser_headers` (Cookie, Origin,
    Sec-Fetch-Site). The invoke hot path serves only these; every other request takes the
    middleware, which decides it in full."""
    if policy.loopback_only and not _loopback_host(host):
        return False
    if policy.api_token is not None:
        return authorization[:7].lower() == "bearer " and policy.token_matches(authorization[7:].strip())
    return not browser_headers and json_media(content_type)


def _csrf_refusal(headers: dict[str, str], cookies: dict[str, str], by_session: bool) -> str | None:
    """Why a state-changing request may not be one the user meant, or None. A page of another
    site can post a form (any cookies included, and not always an Origin) but can neither read
    the CSRF token nor send a JSON body without the browser asking this service first (CORS)."""
    presented = headers.get(CSRF_HEADER, "")
    if CSRF_COOKIE in cookies or by_session:  # a browser of the console: the token must match
        if presented and hmac.compare_digest(presented, cookies.get(CSRF_COOKIE, "")):
            return None
        return "missing or wrong CSRF token (X-CSRF-Token)"
    # Without cookies (a script): any X-CSRF-Token, or a JSON body, is what no form can send.
    if presented or json_media(headers.get("content-type", "")):
        return None
    return (
        "a state-changing request needs a JSON body (Content-Type: application/json) "
        "or the X-CSRF-Token header"
    )


def json_media(content_type: str) -> bool:
    """Whether a Content-Type names JSON (`application/json`, `...+json`): the bodies the API
    reads, and a body no HTML form can send (forms send only urlencoded, multipart and plain text)."""
    if content_type == "application/json":  # what clients send: ~440 instructions, not ~1,900
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _secure_cookie(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name.lower() == b"set-cookie" and b"secure" not in value.lower().replace(b" ", b"").split(b";"):
        value += b"; Secure"
    return name, value


def _cross_site(headers: dict[str, str], host: str) -> str | None:
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc.lower() != host.lower():
            return f"cross-origin request refused (Origin {origin})"
    elif origin == "null":
        return "cross-origin request refused (Origin null)"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site {site})"
    return None


async def _refuse(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    # The API's one error model: problem details (RFC 9457), as `problems.py` answers.
    problem = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": message}
    body = json.dumps({**problem, "problems": []}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
