"""oauth2ClientCredentials end to end: client secret in the header or the body, scope and
audience sent, expiry from `expires_in` with the margin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from auth_server import CLIENT_ID, CLIENT_SECRET, TokenServer, auth_context, token_server

from actionrt.auth.base import AuthenticationError
from actionrt.auth.builtin import build_oauth2
from actionrt.auth.context import AuthContext
from actionrt.auth.models import OAuth2ClientCredentialsConfig
from actionrt.auth.oauth2 import OAuth2ClientCredentialsAuthenticator
from actionrt.http import HttpRequest

__all__ = ["auth_context", "token_server"]  # fixtures, used by parameter name


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "OAUTH_SECRET")


def authenticator(context: AuthContext, **changes: Any) -> OAuth2ClientCredentialsAuthenticator:
    block = {
        "type": "oauth2ClientCredentials",
        "tokenEndpoint": "https://ims.example.com/ims/token/v3",
        "clientId": CLIENT_ID,
        "clientSecret": "{{ secrets.OAUTH_SECRET }}",
        **changes,
    }
    auth = build_oauth2(OAuth2ClientCredentialsConfig.model_validate(block), context)
    assert isinstance(auth, OAuth2ClientCredentialsAuthenticator)
    return auth


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_SECRET", CLIENT_SECRET)


@pytest.mark.parametrize("where", ["header", "body"])
async def test_client_credentials(token_server: TokenServer, auth_context: AuthContext, where: str) -> None:
    auth = authenticator(
        auth_context,
        tokenEndpoint=f"{token_server.base_url}/oauth2/token",
        scope=["openid", "AdobeID"],
        audience="https://api.example.com",
        clientAuthentication=where,
    )
    request = HttpRequest("POST", f"{token_server.base_url}/resource")
    await auth.apply(request)
    assert request.headers["Authorization"] == "Bearer cc-1"
    sent = token_server.requests[0]
    assert sent["form"]["grant_type"] == "client_credentials"
    assert sent["form"]["scope"] == "openid AdobeID"
    assert sent["form"]["audience"] == "https://api.example.com"
    if where == "header":
        assert sent["headers"]["Authorization"].startswith("Basic ")
        assert "client_secret" not in sent["form"]
    else:
        assert "Authorization" not in sent["headers"]
        assert sent["form"]["client_secret"] == CLIENT_SECRET
    entry = auth._entry
    assert entry is not None
    assert entry.expires_at - auth_context.tokens.clock() == pytest.approx(3540, abs=1)


async def test_wrong_secret_is_reported_with_the_oauth_error_code(
    token_server: TokenServer, auth_context: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", "wrong")
    auth = authenticator(auth_context, tokenEndpoint=f"{token_server.base_url}/oauth2/token")
    result = await auth.check()
    assert (result.ok, result.message) == (
        False,
        f"token endpoint {token_server.base_url}/oauth2/token answered 401 (invalid_client)",
    )


async def test_missing_secret_is_named_at_first_use(
    auth_context: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTH_SECRET")
    with pytest.raises(AuthenticationError) as info:
        await authenticator(auth_context).apply(HttpRequest("GET", "https://api.example.com/"))
    assert str(info.value) == "secret 'OAUTH_SECRET' is not set"


@pytest.mark.parametrize(
    ("body", "lifetime", "message"),
    [
        ({"access_token": "t", "expires_in": "120"}, 60, None),
        ({"access_token": "t"}, 3600, None),
        ({"access_token": "t", "token_type": "mac"}, None, "of type 'mac', not bearer"),
        ({"token_type": "bearer"}, None, "without an access_token"),
    ],
)
async def test_token_answers(body: dict[str, Any], lifetime: float | None, message: str | None) -> None:
    with respx.mock() as router:
        router.post("https://ims.example.com/ims/token/v3").mock(return_value=httpx.Response(200, json=body))
        context = AuthContext(policy=None, http=httpx.AsyncClient())
        auth = authenticator(context)
        if message is None:
            await auth.apply(HttpRequest("GET", "https://api.example.com/"))
            assert auth._entry is not None
            assert auth._entry.expires_at - context.tokens.clock() == pytest.approx(lifetime, abs=1)
        else:
            with pytest.raises(AuthenticationError) as info:
                await auth.apply(HttpRequest("GET", "https://api.example.com/"))
            assert message in str(info.value)
