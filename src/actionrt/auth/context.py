"""What authenticators share in one Runtime: secrets, the token cache, the transport token
calls go through and the destination policy they obey. Token endpoints are destinations too:
a token call takes the runtime's own transport (its guard, pools, body cap and proxy)."""

from __future__ import annotations

import asyncio
import json
import logging
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
from actionrt.http import (
    BodyTooLargeError,
    DestinationRefusedError,
    Http1Transport,
    HttpRequest,
    HttpxTransport,
    ProxyRefusedError,
    Transport,
    TransportError,
    proxy_rules,
)
from actionrt.retry import DEFAULT_RETRIED_STATUSES
from actionrt.secrets import SecretProvider, SecretResolver

log = logging.getLogger("actionrt.auth")

TOKEN_TIMEOUT = 10.0  # seconds for one token call; the action call's own deadline still applies
_MAX_TOKEN_RESPONSE = 1 << 20

# True while this task makes a token call: the httpx log filter below then hides the query
# (a runtime whose transport is an `HttpxTransport` sends its token calls through httpx).
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

    Token calls go through `transport`: the runtime binds its own (`use_transport`), so they
    share its guard, pools, body cap and proxy. A context used alone makes an `Http1Transport`
    with `policy` on first use; `http` (an httpx client, for respx tests) is carried by an
    `HttpxTransport`. `policy` checks each token endpoint's URL like any destination, and a
    transport that resolves names through it (the default) checks every address it connects
    to. A context built with `policy=None` checks nothing: for tests with mocked endpoints only.
    Redirects of a token endpoint are not followed (its answer must be the token).
    """

    _UNSET: Any = object()

    def __init__(
        self,
        secret_providers: Mapping[str, SecretProvider] | SecretResolver | None = None,
        *,
        allow_private_network: bool = False,
        http: httpx.AsyncClient | None = None,
        transport: Transport | None = None,
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
        self.http = http
        if transport is None and http is not None:
            transport = HttpxTransport(http, policy=self.policy)
            if _QUERY_FILTER not in _HTTPX_LOG.filters:
                _HTTPX_LOG.addFilter(_QUERY_FILTER)
        self._transport = transport
        self._bound = transport is not None  # given (or bound by a runtime): not ours to close
        # Set by the runtime: awaits one token request, counting it and tracing it.
        self.observe_token: Callable[[str, Coroutine[Any, Any, Any]], Awaitable[Any]] | None = None
        self.tls = tls  # the trust store of token calls made by our own transport

    @property
    def transport(self) -> Transport:
        """The transport token calls go through: the one given or bound, else our own."""
        if self._transport is None:
            self._transport = Http1Transport(
                policy=self.policy, max_body=_MAX_TOKEN_RESPONSE, ssl_context=self.tls, proxy=proxy_rules()
            )
        return self._transport

    def use_transport(self, transport: Transport) -> None:
        """Send token calls through `transport` (the runtime's), unless the context was built
        with its own (`transport=` or `http=`)."""
        if self._bound:
            return
        self._transport = transport
        self._bound = True
        if isinstance(transport, HttpxTransport) and _QUERY_FILTER not in _HTTPX_LOG.filters:
            _HTTPX_LOG.addFilter(_QUERY_FILTER)

    async def aclose(self) -> None:
        """Close the transport this context made for itself (a bound one is its owner's)."""
        if self._transport is not None and not self._bound:
            await self._transport.aclose()
            self._transport = None

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
        if self.policy is not None:
            try:
                self.policy.check_url(url)  # its addresses: checked by the transport's guard
            except DestinationRefusedError as exc:
                raise AuthenticationError(f"token endpoint {label} refused: {exc}") from None
        request = HttpRequest(method, url, dict(headers), content, follow_redirects=False)
        marked = _in_token_call.set(True)
        try:
            async with asyncio.timeout(self.token_timeout):
                response = await self.transport.send(request)
        except TimeoutError:
            raise AuthenticationError(f"token endpoint {label} timed out", transient=True) from None
        except DestinationRefusedError as exc:
            raise AuthenticationError(f"token endpoint {label} refused: {exc}") from None
        except BodyTooLargeError:
            cap = getattr(self.transport, "max_body", _MAX_TOKEN_RESPONSE)
            raise AuthenticationError(f"token endpoint {label} answered more than {cap} bytes") from None
        except ProxyRefusedError as exc:  # names the proxy and the status, never its credentials
            raise AuthenticationError(f"token endpoint {label}: {exc}") from None
        except TransportError as exc:
            # the transport's text names the host at most; only the kind is said here
            message = f"token endpoint {label} unreachable ({type(exc).__name__})"
            raise AuthenticationError(message, transient=True) from None
        finally:
            _in_token_call.reset(marked)
        status = response.status
        if not 200 <= status < 300:
            raise AuthenticationError(
                f"token endpoint {label} answered {status}" + _oauth_error_code(response.content),
                status=status,
                transient=status in DEFAULT_RETRIED_STATUSES,
            )
        if len(response.content) > _MAX_TOKEN_RESPONSE:  # a transport without a cap of its own
            raise AuthenticationError(f"token endpoint {label} answered more than 1 MiB", status=status)
        log.debug("token endpoint %s answered %d", label, status)
        return TokenResponse(status, response.content)


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
