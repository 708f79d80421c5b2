"""What authenticators share in one Runtime: secrets, the token cache, the client for token
calls and the destination policy those calls obey. Token endpoints are destinations too."""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from actionrt.auth.base import AuthenticationError
from actionrt.auth.tokens import TokenCache
from actionrt.guard import DestinationPolicy
from actionrt.http import CA_BUNDLE_ENV, DestinationRefusedError, default_ssl_context
from actionrt.retry import DEFAULT_RETRIED_STATUSES
from actionrt.secrets import SecretProvider, SecretResolver

log = logging.getLogger("actionrt.auth")

TOKEN_TIMEOUT = 10.0  # seconds for one token call; the action call's own deadline still applies
_MAX_TOKEN_RESPONSE = 1 << 20

# True while this task makes a token call: the httpx log filter below then hides the query.
_in_token_call: ContextVar[bool] = ContextVar("actionrt_token_call", default=False)


class _TokenCallQueryFilter(logging.Filter):
    """httpx logs every request's URL at INFO, query included, and a token endpoint's query
    may carry a secret: during a token call the URL is logged without its query. Other
    requests made through httpx in the process are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _in_token_call.get() and isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) and arg.query else arg
                for arg in record.args
            )
        return True


_QUERY_FILTER = _TokenCallQueryFilter()
_HTTPX_LOG = logging.getLogger("httpx")


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A 2xx answer of a token endpoint."""

    status: int
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON; `AuthenticationError` when it is not JSON."""
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationError(
                "token endpoint answered with a body that is not JSON", status=self.status
            ) from None


class AuthContext:
    """Built once per Runtime and handed to every scheme's `build(config, context)`.

    `http` is the client for token calls (tests bind respx to it, or pass one with a mock
    transport). `policy` checks each token endpoint like any destination (scheme, host,
    port, and every resolved address); the call then goes to the checked address. A context
    built with `policy=None` checks nothing: for tests with mocked endpoints only.
    """

    _UNSET: Any = object()

    def __init__(
        self,
        secret_providers: Mapping[str, SecretProvider] | SecretResolver | None = None,
        *,
        allow_private_network: bool = False,
        http: httpx.AsyncClient | None = None,
        policy: DestinationPolicy | None = _UNSET,
        tokens: TokenCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        token_timeout: float = TOKEN_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.secrets = (
            secret_providers
            if isinstance(secret_providers, SecretResolver)
            else SecretResolver(secret_providers)
        )
        self.allow_private_network = allow_private_network
        self.policy: DestinationPolicy | None = (
            DestinationPolicy(allow_private_network) if policy is self._UNSET else policy
        )
        self.tokens = tokens if tokens is not None else TokenCache(clock)
        self.wall_clock = wall_clock  # for JWT iat/exp
        self.token_timeout = token_timeout
        self._http = http
        self._owns_http = http is None
        # Set by the runtime: awaits one token request, counting it and tracing it.
        self.observe_token: Callable[[str, Coroutine[Any, Any, Any]], Awaitable[Any]] | None = None
        self.tls = tls  # the trust store of token calls (a private CA's); None: httpx's default

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for token calls (created on first use; redirects are not followed)."""
        if _QUERY_FILTER not in _HTTPX_LOG.filters:
            _HTTPX_LOG.addFilter(_QUERY_FILTER)
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.token_timeout,
                follow_redirects=False,
                verify=self.tls or (default_ssl_context() if os.environ.get(CA_BUNDLE_ENV) else True),
            )
        return self._http

    async def aclose(self) -> None:
        """Close the token-call client if this context created it."""
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    async def token_request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        label: str,
    ) -> TokenResponse:
        """One call to a token endpoint; a 2xx answer, else `AuthenticationError` naming
        `label` (the endpoint without its query) and the status. Never says a secret."""
        target, extra_headers, extensions = await self._checked_target(url, label)
        marked = _in_token_call.set(True)
        try:
            response = await self.http.request(
                method,
                target,
                headers={**headers, **extra_headers},
                content=content,
                extensions=extensions,
            )
        except httpx.TimeoutException:
            raise AuthenticationError(f"token endpoint {label} timed out", transient=True) from None
        except httpx.HTTPError as exc:
            # httpx's text may quote the URL (and a query secret): say only the kind
            message = f"token endpoint {label} unreachable ({type(exc).__name__})"
            raise AuthenticationError(message, transient=True) from None
        finally:
            _in_token_call.reset(marked)
        if not 200 <= response.status_code < 300:
            raise AuthenticationError(
                f"token endpoint {label} answered {response.status_code}"
                + _oauth_error_code(response.content),
                status=response.status_code,
                transient=response.status_code in DEFAULT_RETRIED_STATUSES,
            )
        if len(response.content) > _MAX_TOKEN_RESPONSE:
            raise AuthenticationError(
                f"token endpoint {label} answered more than 1 MiB", status=response.status_code
            )
        log.debug("token endpoint %s answered %d", label, response.status_code)
        return TokenResponse(response.status_code, response.content)

    async def _checked_target(self, url: str, label: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL to call, pinned to an address the policy allowed (Host and TLS server
        name kept), so a DNS answer changing between check and connect changes nothing."""
        policy = self.policy
        if policy is None:
            return url, {}, {}
        try:
            policy.check_url(url)
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = await policy.resolve(host, port)
        except DestinationRefusedError as exc:
            raise AuthenticationError(f"token endpoint {label} refused: {exc}") from None
        address = addresses[0]
        if address == host:
            return url, {}, {}
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return pinned, {"Host": host_header}, extensions


def endpoint_label(url: str) -> str:
    """A token endpoint as messages show it: scheme, host, port and path; no query."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


# The error codes of RFC 6749 §5.2 and RFC 6750 §3.1, plus the common server-side ones. Only
# these are quoted: a server may echo what it was sent in any other field, secrets included.
OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
        "invalid_token",
        "insufficient_scope",
        "invalid_dpop_proof",
        "use_dpop_nonce",
    }
)


def _oauth_error_code(content: bytes) -> str:
    """` (invalid_client)` when the body is an OAuth error with a registered code."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return f" ({code})" if code in OAUTH_ERROR_CODES else ""
