"""The token cache: sharing, single flight, lifetimes and margins, backoff after failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actionrt.auth.base import AuthenticationError
from actionrt.auth.context import AuthContext
from actionrt.auth.tokens import (
    EXPIRY_MARGIN,
    TOKEN_ATTEMPTS,
    FetchedToken,
    TokenAuthenticator,
    TokenCache,
    credentials_key,
    usable_lifetime,
    with_query,
)
from actionrt.http import HttpRequest


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTokens(TokenAuthenticator):
    """A token authenticator whose endpoint is a Python function, counting calls."""

    scheme = "fake"

    def __init__(self, context: AuthContext, creds: str = "A", **kwargs: Any) -> None:
        super().__init__(context, endpoint_label="https://auth.example.com/token", **kwargs)
        self.creds = creds
        self.calls = 0
        self.fail_with: int | None = None
        self.transient_failures = 0  # the first calls fail with a 503 this many times
        self.lifetime = 300.0
        self.gate: asyncio.Event | None = None

    def credentials(self) -> Any:
        return {"who": self.creds}

    async def fetch(self) -> FetchedToken:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.calls <= self.transient_failures:
            raise AuthenticationError("token endpoint answered 503", status=503, transient=True)
        if self.fail_with is not None:
            raise AuthenticationError(
                f"token endpoint {self.endpoint_label} answered {self.fail_with}",
                status=self.fail_with,
            )
        return FetchedToken(f"tok-{self.creds}-{self.calls}", self.lifetime)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def context(clock: Clock) -> AuthContext:
    return AuthContext(policy=None, clock=clock)


def request() -> HttpRequest:
    return HttpRequest("POST", "https://api.example.com/v1/x")


async def test_token_is_fetched_once_then_served_from_cache_until_it_expires(
    context: AuthContext, clock: Clock
) -> None:
    auth = FakeTokens(context)
    first, second = request(), request()
    await auth.apply(first)
    await auth.apply(second)
    assert auth.calls == 1
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer tok-A-1"
    clock.now += 299.9
    await auth.apply(request())
    assert auth.calls == 1
    clock.now += 0.2
    late = request()
    await auth.apply(late)
    assert auth.calls == 2
    assert late.headers["Authorization"] == "Bearer tok-A-2"


async def test_identical_credentials_share_one_token_different_ones_do_not(
    context: AuthContext,
) -> None:
    one, same, other = FakeTokens(context), FakeTokens(context), FakeTokens(context, "B")
    for auth in (one, same, other):
        await auth.apply(request())
    assert (one.calls, same.calls, other.calls) == (1, 0, 1)
    assert len(context.tokens) == 2


async def test_one_refresh_in_flight_for_a_thousand_concurrent_calls(
    context: AuthContext,
) -> None:
    auth = FakeTokens(context)
    auth.gate = asyncio.Event()
    requests = [request() for _ in range(1000)]
    calls = [asyncio.ensure_future(auth.apply(r)) for r in requests]
    await asyncio.sleep(0)  # let every call reach the cache (one loop turn, no timing)
    auth.gate.set()
    await asyncio.gather(*calls)
    assert auth.calls == 1
    assert {r.headers["Authorization"] for r in requests} == {"Bearer tok-A-1"}


async def test_a_caller_giving_up_does_not_cancel_the_refresh_others_wait_for(
    context: AuthContext,
) -> None:
    auth = FakeTokens(context)
    auth.gate = asyncio.Event()
    impatient = asyncio.ensure_future(auth.apply(request()))
    patient_request = request()
    patient = asyncio.ensure_future(auth.apply(patient_request))
    await asyncio.sleep(0)
    impatient.cancel()
    auth.gate.set()
    await patient
    assert impatient.cancelled()
    assert patient_request.headers["Authorization"] == "Bearer tok-A-1"
    assert auth.calls == 1


async def test_failures_raise_with_the_status_and_back_off(context: AuthContext, clock: Clock) -> None:
    auth = FakeTokens(context)
    auth.fail_with = 503
    with pytest.raises(AuthenticationError) as first:
        await auth.apply(request())
    assert first.value.status == 503
    assert "answered 503" in str(first.value)
    # within the backoff: no new token request, the same failure reported at once
    with pytest.raises(AuthenticationError) as cached:
        await auth.apply(request())
    assert auth.calls == 1
    assert "answered 503" in str(cached.value) and "next token request in 1.0 s" in str(cached.value)
    clock.now += 1.01
    with pytest.raises(AuthenticationError):
        await auth.apply(request())
    assert auth.calls == 2
    # the backoff grows: 2 s after the second failure
    clock.now += 1.5
    with pytest.raises(AuthenticationError):
        await auth.apply(request())
    assert auth.calls == 2
    clock.now += 0.6
    auth.fail_with = None
    ok = request()
    await auth.apply(ok)
    assert auth.calls == 3
    assert ok.headers["Authorization"] == "Bearer tok-A-3"


async def test_backoff_is_capped_at_a_minute(context: AuthContext, clock: Clock) -> None:
    auth = FakeTokens(context)
    auth.fail_with = 500
    for _ in range(10):
        with pytest.raises(AuthenticationError):
            await auth.apply(request())
        clock.now += 60.01
    assert auth.calls == 10


async def test_unexpected_fetch_errors_become_authentication_errors_without_detail(
    context: AuthContext,
) -> None:
    class Broken(FakeTokens):
        async def fetch(self) -> FetchedToken:
            raise RuntimeError("https://auth.example.com/token?secret=hunter2 exploded")

    with pytest.raises(AuthenticationError) as info:
        await Broken(context).apply(request())
    assert str(info.value) == "token request failed (RuntimeError)"


async def test_invalidate_forces_one_refresh_and_ignores_stale_401s(
    context: AuthContext,
) -> None:
    auth = FakeTokens(context)
    old = request()
    await auth.apply(old)
    also_old = request()
    await auth.apply(also_old)
    auth.invalidate(old)  # the endpoint said 401 to a call carrying tok-A-1
    fresh = request()
    await auth.apply(fresh)
    assert fresh.headers["Authorization"] == "Bearer tok-A-2"
    auth.invalidate(also_old)  # a late 401 for the old token: the new one is kept
    await auth.apply(request())
    assert auth.calls == 2
    auth.invalidate()  # without the request: always dropped
    await auth.apply(request())
    assert auth.calls == 3


@pytest.mark.parametrize(
    ("injection", "target", "url", "header"),
    [
        ("bearer", None, "https://api.example.com/x", ("Authorization", "Bearer tok-A-1")),
        ("header", "x-auth-token", "https://api.example.com/x", ("x-auth-token", "tok-A-1")),
        ("queryParam", "access token", "https://api.example.com/x?access%20token=tok-A-1", None),
    ],
)
async def test_injection(
    context: AuthContext, injection: Any, target: str | None, url: str, header: Any
) -> None:
    auth = FakeTokens(context, injection=injection, target=target)
    for _ in range(2):  # the slow path, then the cached path, inject the same way
        req = request()
        req.url = "https://api.example.com/x"
        await auth.apply(req)
        assert req.url == url
        assert (dict([header]) if header else {}) == req.headers


def test_usable_lifetime_margin_rules() -> None:
    assert usable_lifetime(300, from_response=False) == 300
    assert usable_lifetime(300, from_response=True) == 300 - EXPIRY_MARGIN
    assert usable_lifetime(121, from_response=True) == 61
    assert usable_lifetime(120, from_response=True) == 60  # half, where the margin would eat it
    assert usable_lifetime(30, from_response=True) == 15
    assert usable_lifetime(-5, from_response=True) == 0


async def test_a_token_expired_on_arrival_serves_the_calls_that_waited_only(
    context: AuthContext,
) -> None:
    auth = FakeTokens(context)
    auth.lifetime = 0.0
    first, second = request(), request()
    await asyncio.gather(auth.apply(first), auth.apply(second))
    assert auth.calls == 1
    await auth.apply(request())
    assert auth.calls == 2


def test_with_query_and_credentials_key() -> None:
    assert with_query("https://a.example/x", "k=v") == "https://a.example/x?k=v"
    assert with_query("https://a.example/x?a=1", "k=v") == "https://a.example/x?a=1&k=v"
    assert with_query("https://a.example/x#f", "k=v") == "https://a.example/x?k=v#f"
    assert credentials_key("s", {"a": 1, "b": 2}) == credentials_key("s", {"b": 2, "a": 1})
    assert credentials_key("s", {"a": 1}) != credentials_key("t", {"a": 1})


def test_cache_entries_never_show_their_token() -> None:
    cache = TokenCache()
    entry = cache.entry("k" * 64)
    entry.token = "very-secret-token"
    assert "very-secret-token" not in repr(entry)


class Sleeps:
    """The waits of the token-request retries, recorded instead of slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retrying_context(clock: Clock, sleeps: Sleeps) -> AuthContext:
    return AuthContext(policy=None, tokens=TokenCache(clock, sleep=sleeps))


async def test_a_transient_token_failure_is_retried_within_the_refresh(
    retrying_context: AuthContext, sleeps: Sleeps
) -> None:
    auth = FakeTokens(retrying_context)
    auth.transient_failures = 2
    ok = request()
    await auth.apply(ok)
    assert ok.headers["Authorization"] == "Bearer tok-A-3"
    assert auth.calls == 3
    assert len(sleeps.waits) == 2 and 0.25 <= sleeps.waits[0] < sleeps.waits[1] <= 0.6


async def test_a_final_token_failure_is_not_retried(retrying_context: AuthContext, sleeps: Sleeps) -> None:
    auth = FakeTokens(retrying_context)
    auth.fail_with = 401
    with pytest.raises(AuthenticationError, match="answered 401"):
        await auth.apply(request())
    assert (auth.calls, sleeps.waits) == (1, [])


async def test_transient_failures_stop_after_the_attempts_then_back_off(
    retrying_context: AuthContext, sleeps: Sleeps, clock: Clock
) -> None:
    auth = FakeTokens(retrying_context)
    auth.transient_failures = 10
    with pytest.raises(AuthenticationError, match="answered 503"):
        await auth.apply(request())
    assert auth.calls == TOKEN_ATTEMPTS
    with pytest.raises(AuthenticationError, match=r"next token request in 1\.0 s"):
        await auth.apply(request())
    assert auth.calls == TOKEN_ATTEMPTS
