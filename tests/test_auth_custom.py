"""Custom authorization end to end against the loopback token server (respx for edge cases)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
import respx
from auth_server import (  # fixtures are imported by name
    CLIENT_SECRET,
    LOGIN,
    TokenServer,
    auth_context,
    token_server,
)

from actionrt.auth.base import AuthenticationError
from actionrt.auth.builtin import build_custom
from actionrt.auth.context import AuthContext
from actionrt.auth.custom import (
    CustomAuthenticator,
    compile_header_value,
    expiry_seconds,
    form_encode,
    select,
)
from actionrt.auth.models import CustomAuthorizationConfig
from actionrt.http import HttpRequest
from actionrt.secrets import SecretResolver

__all__ = ["auth_context", "token_server"]  # fixtures, used by parameter name

EPSILON = {
    "type": "customAuthorization",
    "authorizationType": "Bearer",
    "endpoint": "https://auth.example.com/epsilon/oauth2/access_token",
    "method": "POST",
    "headers": {"Authorization": "Basic EncodeBase64(my-client-id:my-client-secret)"},
    "body": {
        "bodyType": "form",
        "bodyParams": {
            "scope": "cn mail givenname uid employeeNumber",
            "grant_type": "password",
            "username": "user",
            "password": "pass",
        },
    },
    "tokenInResponse": "json://access_token",
    "cacheDuration": {"duration": 5, "timeUnit": "minutes"},
}
LOGIN_EXAMPLE = {
    "type": "customAuthorization",
    "endpoint": "https://myapidomain.com/v2/user/login",
    "method": "POST",
    "headers": {"x-retailer": "any value"},
    "body": {"bodyType": "form", "bodyParams": {"secret": "any value", "username": "any value"}},
    "tokenInResponse": "json://token",
    "cacheDuration": {"expiryInResponse": "json://expiryDuration", "timeUnit": "minutes"},
    "authorizationType": "header",
    "tokenTarget": "x-auth-token",
}


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "LOGIN_SECRET,ID,SECRET")


def authenticator(context: AuthContext, **block: Any) -> CustomAuthenticator:
    auth = build_custom(CustomAuthorizationConfig.model_validate(block), context)
    assert isinstance(auth, CustomAuthenticator)
    return auth


def resource(server: TokenServer) -> HttpRequest:
    return HttpRequest("GET", f"{server.base_url}/resource")


async def call(request: HttpRequest) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(request.method, request.url, headers=request.headers)


async def test_epsilon_password_grant_as_published(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    auth = authenticator(auth_context, **{**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"})
    request = resource(token_server)
    await auth.apply(request)
    assert request.headers["Authorization"] == "Bearer pw-1"
    assert (await call(request)).status_code == 200
    sent = token_server.requests[0]
    assert (
        sent["headers"]["Authorization"]
        == "Basic " + base64.b64encode(b"my-client-id:my-client-secret").decode()
    )
    assert sent["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert sent["form"]["scope"] == "cn mail givenname uid employeeNumber"
    # cached for the configured 5 minutes: no second token call
    await auth.apply(resource(token_server))
    assert token_server.token_requests == 1
    entry = auth._entry
    assert entry is not None
    assert entry.expires_at - auth_context.tokens.clock() == pytest.approx(300, abs=1)


async def test_login_example_header_injection_and_expiry_from_response(
    token_server: TokenServer, auth_context: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGIN_SECRET", LOGIN["secret"])
    block = {
        **LOGIN_EXAMPLE,
        "endpoint": f"{token_server.base_url}/v2/user/login",
        "headers": {"x-retailer": LOGIN["x-retailer"]},
        "body": {
            "bodyType": "form",
            "bodyParams": {"secret": "{{ secrets.LOGIN_SECRET }}", "username": "ada"},
        },
    }
    auth = authenticator(auth_context, **block)
    request = resource(token_server)
    await auth.apply(request)
    assert request.headers["x-auth-token"] == "login-1"
    assert (await call(request)).status_code == 200
    assert token_server.requests[0]["form"] == {"secret": LOGIN["secret"], "username": "ada"}
    # expiryDuration 5 (minutes) from the response, minus the one-minute margin
    entry = auth._entry
    assert entry is not None
    assert entry.expires_at - auth_context.tokens.clock() == pytest.approx(240, abs=1)


async def test_get_token_whole_response_injected_as_query_parameter(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    auth = authenticator(
        auth_context,
        type="customAuthorization",
        endpoint=f"{token_server.base_url}/token",
        method="GET",
        headers={"x-api-key": CLIENT_SECRET},
        tokenInResponse="response",
        authorizationType="queryParam",
        tokenTarget="access_token",
    )
    request = resource(token_server)
    await auth.apply(request)
    assert request.url.endswith("/resource?access_token=get-1")
    assert token_server.requests[0]["method"] == "GET"
    assert (await call(request)).status_code == 200


async def test_json_body_nested_params_array_selector_and_expiry(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    token_server.expires_in = 600
    auth = authenticator(
        auth_context,
        type="customAuthorization",
        endpoint=f"{token_server.base_url}/json-token",
        method="POST",
        body={
            "bodyType": "json",
            "bodyParams": {"auth": {"credentials": {"secret": CLIENT_SECRET}, "tags": [1, "é"]}},
        },
        tokenInResponse="json://data.0.token",
        cacheDuration={"expiryInResponse": "json://data.0.expires.in", "timeUnit": "seconds"},
    )
    request = resource(token_server)
    await auth.apply(request)
    assert request.headers["Authorization"] == "Bearer json-1"
    assert token_server.requests[0]["json"]["auth"]["tags"] == [1, "é"]
    entry = auth._entry
    assert entry is not None
    assert entry.expires_at - auth_context.tokens.clock() == pytest.approx(540, abs=1)


async def test_a_thousand_concurrent_calls_make_one_token_request(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    block = {**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"}
    auths = [authenticator(auth_context, **block) for _ in range(2)]  # two actions, same creds
    requests = [resource(token_server) for _ in range(1000)]
    await asyncio.gather(*(auths[i % 2].apply(r) for i, r in enumerate(requests)))
    assert token_server.token_requests == 1
    assert {r.headers["Authorization"] for r in requests} == {"Bearer pw-1"}


async def test_failing_token_endpoint_reports_status_and_backs_off(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    token_server.fail_status = 503
    auth = authenticator(auth_context, **{**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"})
    request = resource(token_server)
    with pytest.raises(AuthenticationError) as info:
        await auth.apply(request)
    assert info.value.status == 503
    assert str(info.value) == (
        f"token endpoint {token_server.base_url}/oauth2/token answered 503 (temporarily_unavailable)"
    )
    assert "Authorization" not in request.headers  # nothing to send with
    for _ in range(20):
        with pytest.raises(AuthenticationError):
            await auth.apply(resource(token_server))
    assert token_server.token_requests == 3  # one refresh's 3 tries, then backed off: not hammered


async def test_refresh_after_401_from_the_action_endpoint(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    auth = authenticator(auth_context, **{**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"})
    first = resource(token_server)
    await auth.apply(first)
    token_server.revoked.add("pw-1")  # the API stops accepting the cached token
    answer = await call(first)
    assert answer.status_code == 401
    auth.invalidate(first)  # what the engine does on a 401, before its one extra try
    retry = resource(token_server)
    await auth.apply(retry)
    assert retry.headers["Authorization"] == "Bearer pw-2"
    assert (await call(retry)).status_code == 200
    assert token_server.token_requests == 2


async def test_check_calls_only_the_token_endpoint(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    auth = authenticator(auth_context, **{**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"})
    result = await auth.check()
    assert result.ok
    assert result.message.startswith(f"token endpoint {token_server.base_url}/oauth2/token")
    assert "Bearer ***" in result.message and "pw-1" not in result.message
    assert token_server.resource_calls == 0
    token_server.fail_status = 401
    failed = await auth.check()
    assert not failed.ok
    assert "answered 401" in failed.message


async def test_loopback_token_endpoint_refused_by_default(token_server: TokenServer) -> None:
    context = AuthContext()  # the runtime default: private networks refused
    auth = authenticator(context, **{**EPSILON, "endpoint": f"{token_server.base_url}/oauth2/token"})
    with pytest.raises(AuthenticationError) as info:
        await auth.apply(resource(token_server))
    assert "refused" in str(info.value)
    assert token_server.token_requests == 0
    await context.aclose()


async def test_hostname_endpoints_are_pinned_to_the_checked_address(
    token_server: TokenServer, auth_context: AuthContext
) -> None:
    url = token_server.base_url.replace("127.0.0.1", "localhost")
    auth = authenticator(auth_context, **{**EPSILON, "endpoint": f"{url}/oauth2/token"})
    await auth.apply(resource(token_server))
    assert token_server.requests[0]["headers"]["Host"] == url.removeprefix("http://")


# -- respx: answers the loopback server does not give -------------------------------------


@pytest.fixture
def mocked() -> Any:
    with respx.mock(assert_all_called=False) as router:
        yield router


def mocked_context() -> AuthContext:
    return AuthContext(policy=None, http=httpx.AsyncClient())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, json={"other": "x"}), "without a token at json://access_token"),
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json={"access_token": 12}), "without a token"),
        (httpx.Response(200, json={"access_token": "a\r\nX-Evil: 1"}), "control characters"),
        (httpx.Response(200, json={"access_token": "a\x01b"}), "control characters"),
        (httpx.Response(302, headers={"Location": "https://evil.example/"}), "answered 302"),
        (httpx.Response(500, json={"error": "x y", "error_description": "S3CRET"}), "answered 500"),
    ],
)
async def test_bad_token_answers(mocked: Any, answer: httpx.Response, message: str) -> None:
    mocked.post("https://auth.example.com/epsilon/oauth2/access_token").mock(return_value=answer)
    auth = authenticator(mocked_context(), **EPSILON)
    with pytest.raises(AuthenticationError) as info:
        await auth.apply(HttpRequest("GET", "https://api.example.com/x"))
    assert message in str(info.value)
    assert "S3CRET" not in str(info.value)


async def test_transport_errors_and_timeouts(mocked: Any) -> None:
    route = mocked.post("https://auth.example.com/epsilon/oauth2/access_token")
    route.mock(side_effect=httpx.ConnectError("boom https://auth.example.com/?k=S3CRET"))
    with pytest.raises(AuthenticationError) as info:
        await authenticator(mocked_context(), **EPSILON).apply(HttpRequest("GET", "https://a/x"))
    assert str(info.value) == (
        "token endpoint https://auth.example.com/epsilon/oauth2/access_token unreachable (ConnectError)"
    )
    # httpx's own read timeout is a broken connection to the transport; the token call's
    # deadline (token_timeout) is what says "timed out".
    route.mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(AuthenticationError) as info:
        await authenticator(mocked_context(), **EPSILON).apply(HttpRequest("GET", "https://a/x"))
    assert "unreachable (NetworkError)" in str(info.value) and info.value.transient

    async def never_answers(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    route.mock(side_effect=never_answers)
    hung = AuthContext(policy=None, http=httpx.AsyncClient(), token_timeout=0.05)
    with pytest.raises(AuthenticationError) as info:
        await authenticator(hung, **EPSILON).apply(HttpRequest("GET", "https://a/x"))
    assert "timed out" in str(info.value) and info.value.transient


async def test_missing_expiry_keeps_the_token_an_hour(mocked: Any, caplog: pytest.LogCaptureFixture) -> None:
    mocked.post("https://auth.example.com/epsilon/oauth2/access_token").mock(
        return_value=httpx.Response(200, json={"access_token": "t"})
    )
    context = mocked_context()
    auth = authenticator(context, **{**EPSILON, "cacheDuration": {"expiryInResponse": "json://expires_in"}})
    await auth.apply(HttpRequest("GET", "https://api.example.com/x"))
    assert auth._entry is not None
    assert auth._entry.expires_at - context.tokens.clock() == pytest.approx(3600, abs=1)
    assert "no usable expiry at json://expires_in" in caplog.text


async def test_default_cache_is_one_hour_and_content_type_is_not_overridden(
    mocked: Any,
) -> None:
    route = mocked.post("https://auth.example.com/epsilon/oauth2/access_token").mock(
        return_value=httpx.Response(200, json={"access_token": "t"})
    )
    context = mocked_context()
    block = {k: v for k, v in EPSILON.items() if k != "cacheDuration"}
    block["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    auth = authenticator(context, **block)
    await auth.apply(HttpRequest("GET", "https://api.example.com/x"))
    assert auth._entry is not None
    assert auth._entry.expires_at - context.tokens.clock() == pytest.approx(3600, abs=1)
    sent = route.calls.last.request
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["Accept"] == "application/json"


def test_encode_base64_in_header_values() -> None:
    secrets = SecretResolver({"env": _Dict({"ID": "my-id", "SECRET": "s)e(c:ret"})})
    value = compile_header_value("Basic EncodeBase64({{ secrets.ID }}:{{ secrets.SECRET }})", secrets)
    assert value() == "Basic " + base64.b64encode(b"my-id:s)e(c:ret").decode()
    assert compile_header_value("EncodeBase64(a(b)c) x EncodeBase64(é)", secrets)() == (
        base64.b64encode(b"a(b)c").decode() + " x " + base64.b64encode("é".encode()).decode()
    )
    assert compile_header_value("EncodeBase64(open", secrets)() == "EncodeBase64(open"


def test_form_encoding_select_and_expiry_parsing() -> None:
    assert (
        form_encode({"scope": "a b", "n": 1, "ok": True, "none": None, "l": ["x", "y"], "u": "é&="})
        == b"scope=a+b&n=1&ok=true&none=&l=x&l=y&u=%C3%A9%26%3D"
    )
    data = {"data": [{"token": "t"}], "a": {"0": "key"}}
    assert select(data, ("data", "0", "token")) == "t"
    assert select(data, ("a", "0")) == "key"
    assert select(data, ("data", "5", "token")) is None
    assert select(data, ("data", "x")) is None
    assert expiry_seconds(5, 60, 0) == 300
    assert expiry_seconds("300", 1, 0) == 300
    assert expiry_seconds("1970-01-01T00:10:00Z", 1, 0) == 600
    assert expiry_seconds("1970-01-01T00:10:00", 1, 0) == 600
    assert expiry_seconds(True, 1, 0) is None
    assert expiry_seconds("soon", 1, 0) is None


class _Dict:
    name = "env"
    checkable = True

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)
