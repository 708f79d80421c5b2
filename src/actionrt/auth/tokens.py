"""The token cache and the token-based authenticator: one token per set of credentials, one
refresh in flight at a time, lifetimes with a safety margin, transient failures retried
(tenacity) within the refresh, and failures that back off.

Actions whose resolved token-call settings are identical share one `TokenEntry` (keyed by a
hash of those settings). Once an authenticator holds its entry, `apply` is a clock read, a
comparison and a dict store: no await on I/O, no hashing, no secret lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from actionrt.auth.base import AuthCheck, AuthenticationError
from actionrt.http import HttpRequest
from actionrt.secrets import MissingSecretError

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

log = logging.getLogger("actionrt.auth")

# Expiries read from a token response are cut by this margin, so a token is never sent in
# the last minute of its life (clock skew, slow calls): no avoidable 401s.
EXPIRY_MARGIN = 60.0
DEFAULT_LIFETIME = 3600.0
# A refresh tries the token endpoint up to 3 times while its failures are transient (no
# answer, 408/425/429/5xx but 501), waiting ~0.25 s then ~0.5 s, within 10 s in all.
TOKEN_ATTEMPTS = 3
TOKEN_RETRY_WAIT = wait_exponential_jitter(multiplier=0.25, max=2.0, jitter=0.1)
TOKEN_RETRY_WITHIN = 10.0
# A refresh that failed is not repeated before 1 s, then 2, 4, ... up to 60 s.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0

Injection = Literal["bearer", "header", "queryParam"]


def usable_lifetime(lifetime: float, *, from_response: bool) -> float:
    """How long a token is used, given the lifetime it was issued with.

    A fixed configured duration is used as is. An expiry read from the token response loses
    `EXPIRY_MARGIN` (one minute); a token living two minutes or less is kept for half its life
    instead (the margin would eat it all), and one that is already expired serves only the calls
    that waited for it.
    """
    if not from_response:
        return max(lifetime, 0.0)
    if lifetime > 2 * EXPIRY_MARGIN:
        return lifetime - EXPIRY_MARGIN
    return max(lifetime / 2, 0.0)


@dataclass(frozen=True, slots=True)
class FetchedToken:
    """A token just obtained from a token endpoint, and how long it may be used (seconds)."""

    value: str
    lifetime: float  # already margin-adjusted: see `usable_lifetime`


class TokenEntry:
    """The cached token of one set of credentials, shared by every action using them."""

    __slots__ = ("error", "expires_at", "failures", "key", "refresh", "rejected", "retry_at", "seal", "token")

    def __init__(self, key: str) -> None:
        self.key = key
        self.seal = b""  # a secret derived from the credentials: seals the token in a shared store
        self.rejected = ""  # the last token a 401 rejected: a shared store must not hand it back
        self.token = ""
        self.expires_at = -math.inf  # on the cache's clock; the token is valid while now < this
        self.refresh: asyncio.Future[str] | None = None
        self.failures = 0
        self.retry_at = -math.inf
        self.error: AuthenticationError | None = None

    def __repr__(self) -> str:  # never the token
        return f"TokenEntry(key={self.key[:12]}…, cached={bool(self.token)})"


class TokenStore(Protocol):
    """Where tokens are shared beyond one process (the fleet keeps them in Redis, sealed)."""

    async def fetch(self, entry: TokenEntry, fetch: Callable[[], Awaitable[FetchedToken]]) -> FetchedToken:
        """The shared token of `entry` (never `entry.rejected`), or `fetch()`'s, stored for
        the others, with one fetch at a time across every process using the store."""
        ...


class TokenCache:
    """In-process token cache for one Runtime. Single-flight refresh; backoff after failures.

    With a `store`, a refresh first asks the store, so processes sharing it share tokens."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        store: TokenStore | None = None,
    ) -> None:
        self.clock = clock
        self.store = store
        self._entries: dict[str, TokenEntry] = {}
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(TOKEN_ATTEMPTS) | stop_after_delay(TOKEN_RETRY_WITHIN),
            wait=TOKEN_RETRY_WAIT,
            retry=retry_if_exception(_transient),
            sleep=sleep,
            reraise=True,
        )

    def entry(self, key: str) -> TokenEntry:
        """The entry for `key` (a hash of resolved credentials), created empty if new."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = TokenEntry(key)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    async def token(self, entry: TokenEntry, fetch: Callable[[], Awaitable[FetchedToken]]) -> str:
        """A valid token: cached, or fetched once for however many callers wait at the time.

        Raises `AuthenticationError` when the fetch fails, and, without calling the endpoint,
        while the failure's backoff lasts.
        """
        now = self.clock()
        if entry.token and now < entry.expires_at:
            return entry.token
        refresh = entry.refresh
        if refresh is None:
            if now < entry.retry_at and entry.error is not None:
                raise AuthenticationError(
                    f"{entry.error}; next token request in {entry.retry_at - now:.1f} s",
                    status=entry.error.status,
                )
            # The fetch runs as its own task so a caller that gives up (its deadline passed)
            # does not cancel the refresh the others are waiting for.
            refresh = entry.refresh = asyncio.ensure_future(self._refresh(entry, fetch))
            refresh.add_done_callback(_consume_exception)
        return await asyncio.shield(refresh)

    async def _refresh(self, entry: TokenEntry, fetch: Callable[[], Awaitable[FetchedToken]]) -> str:
        started = self.clock()
        try:
            # A copy per refresh: refreshes of other entries may run at the same time.
            retrying = self._retrying.copy()

            async def fetch_retried() -> FetchedToken:
                fetched: FetchedToken = await retrying(fetch)
                return fetched

            fetched = await (
                fetch_retried() if self.store is None else self.store.fetch(entry, fetch_retried)
            )
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, AuthenticationError)
                else AuthenticationError(
                    # an unexpected failure: its text may quote a URL or a body, so only its kind
                    f"token request failed ({type(exc).__name__})"
                )
            )
            entry.failures += 1
            delay = min(BACKOFF_FIRST * 2 ** (entry.failures - 1), BACKOFF_MAX)
            entry.retry_at = self.clock() + delay
            entry.error = error
            log.warning("%s; next token request in %.0f s", error, delay)
            if error is exc:
                raise
            raise error from None
        finally:
            entry.refresh = None
        entry.failures = 0
        entry.retry_at = -math.inf
        entry.error = None
        entry.token = fetched.value
        # Counted from when the request left: the issuer's clock started no earlier.
        entry.expires_at = started + fetched.lifetime
        return fetched.value

    def invalidate(self, entry: TokenEntry, token: str | None = None) -> None:
        """Forget the entry's token; with `token`, only if it is still the cached one."""
        if token is not None and token != entry.token:
            return  # already replaced: the 401 came from a call sent with an older token
        entry.rejected = entry.token or entry.rejected
        entry.token = ""
        entry.expires_at = -math.inf


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, AuthenticationError) and exc.transient


def _consume_exception(future: asyncio.Future[str]) -> None:
    # Every waiter may have been cancelled: mark the exception retrieved so asyncio does not
    # log "exception was never retrieved" (the failure is already logged and cached).
    if not future.cancelled():
        future.exception()


def credentials_key(scheme: str, material: Any) -> str:
    """A hash naming one set of resolved credentials (never stored or shown in clear)."""
    text = json.dumps([scheme, material], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def credentials_seal(scheme: str, material: Any) -> bytes:
    """A secret derived from one set of resolved credentials, unlike `credentials_key` not
    derivable from the key: a shared store seals the token with it."""
    text = json.dumps([scheme, material], sort_keys=True, separators=(",", ":"), default=str)
    return hmac.digest(b"actionrt token seal", text.encode("utf-8"), "sha256")


def with_query(url: str, piece: str) -> str:
    """`url` with an already-encoded `name=value` appended to its query."""
    head, hash_, fragment = url.partition("#")
    joined = f"{head}{'&' if '?' in head else '?'}{piece}"
    return f"{joined}#{fragment}" if hash_ else joined


class TokenAuthenticator(ABC):
    """Fetches a token from a token endpoint, caches it, injects it in every request.

    Subclasses say what identifies their credentials (`credentials`) and how a token is
    fetched (`fetch`); this class owns caching, single-flight, injection, `invalidate` and
    `check`.
    """

    scheme: str = "token"

    def __init__(
        self,
        context: AuthContext,
        *,
        injection: Injection = "bearer",
        target: str | None = None,
        endpoint_label: str,
    ) -> None:
        self._context = context
        self._cache = context.tokens
        self._clock = context.tokens.clock
        self._entry: TokenEntry | None = None
        self._injection = injection
        self._in_query = injection == "queryParam"
        self._name = "Authorization" if injection == "bearer" else (target or "")
        self._query_name = quote(target or "", safe="")
        self._token = ""  # the token `_value` was built from
        self._value = ""  # what is injected: `Bearer <token>`, `<token>` or `name=<token>`
        self.endpoint_label = endpoint_label  # the token endpoint as shown in messages

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def credentials(self) -> Any:
        """JSON-able settings of the token call, secrets resolved: equal settings share a token.

        Raises `MissingSecretError` when a secret has no value.
        """

    @abstractmethod
    async def fetch(self) -> FetchedToken:
        """Call the token endpoint once; `AuthenticationError` (one line, no secret) on failure."""

    # -- the Authenticator interface --------------------------------------------------------

    async def apply(self, request: HttpRequest) -> None:
        entry = self._entry
        if entry is not None and self._clock() < entry.expires_at:
            token = entry.token
        else:
            token = await self._fresh_token()
        if token is not self._token:
            self._prepare(token)
        if self._in_query:
            request.url = with_query(request.url, self._value)
        else:
            request.headers[self._name] = self._value

    async def _fresh_token(self) -> str:
        """The token once the cached one is missing or expired: shared, fetched once."""
        entry = self._entry
        if entry is None:
            entry = self._entry = self._bind()
        return await self._cache.token(entry, self._fetch_checked)

    def invalidate(self, request: HttpRequest | None = None) -> None:
        entry = self._entry
        if entry is None:
            return
        if request is not None and not self._carries_current_token(request, entry):
            return
        self._cache.invalidate(entry)
        # Re-resolve secrets on the next call: a 401 is how a rotated secret shows up.
        self._entry = None

    async def check(self) -> AuthCheck:
        try:
            fetched = await self._fetch_checked()
        except AuthenticationError as exc:
            return AuthCheck(False, str(exc))
        where = {
            "bearer": "as Authorization: Bearer ***",
            "header": f"in header {self._name}: ***",
            "queryParam": f"in query parameter {self._query_name}=***",
        }[self._injection]
        return AuthCheck(
            True,
            f"token endpoint {self.endpoint_label} issued a token (used for "
            f"{fetched.lifetime:.0f} s); calls would send it {where}",
        )

    # -- internals --------------------------------------------------------------------------

    def _bind(self) -> TokenEntry:
        try:
            material = self.credentials()
        except MissingSecretError as exc:
            raise AuthenticationError(str(exc)) from None
        entry = self._cache.entry(credentials_key(self.scheme, material))
        if not entry.seal:
            entry.seal = credentials_seal(self.scheme, material)
        return entry

    async def _fetch_checked(self) -> FetchedToken:
        observe = self._context.observe_token
        if observe is None:
            return await self._fetch_reported()
        fetched: FetchedToken = await observe(self.scheme, self._fetch_reported())
        return fetched

    async def _fetch_reported(self) -> FetchedToken:
        try:
            return await self.fetch()
        except MissingSecretError as exc:
            raise AuthenticationError(str(exc)) from None

    def _prepare(self, token: str) -> None:
        if self._injection == "bearer":
            self._value = f"Bearer {token}"
        elif self._in_query:
            self._value = f"{self._query_name}={quote(token, safe='')}"
        else:
            self._value = token
        self._token = token

    def _carries_current_token(self, request: HttpRequest, entry: TokenEntry) -> bool:
        if not entry.token:
            return False
        if entry.token is not self._token:
            self._prepare(entry.token)
        if self._in_query:
            return self._value in request.url
        return request.headers.get(self._name) == self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint_label!r})"
