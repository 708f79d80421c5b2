"""certificateCredential end to end: an RS256 client assertion the token server verifies with
the client's public key, over TLS, the endpoint pinned to its checked address."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_server import CLIENT_ID, Pki, RunningServer, TokenServer, pki, server_ssl_context
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from actionrt.auth.base import AuthenticationError
from actionrt.auth.builtin import build_custom
from actionrt.auth.certificate import ASSERTION_TYPE, CertificateCredentialAuthenticator
from actionrt.auth.context import AuthContext
from actionrt.auth.models import CustomAuthorizationConfig
from actionrt.http import HttpRequest

__all__ = ["pki"]  # fixture, used by parameter name


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[TokenServer]:
    state = TokenServer(public_key=pki.client_public_pem)
    running = await RunningServer(state.app(), server_ssl_context(pki)).start()
    state.base_url = f"https://localhost:{running.port}"
    state.audience = f"{state.base_url}/oauth2/token"
    yield state
    await running.stop()


@pytest.fixture
async def tls_context(pki: Pki) -> AsyncIterator[AuthContext]:
    trust = ssl.create_default_context(cafile=str(pki.ca_file))
    context = AuthContext(allow_private_network=True, http=httpx.AsyncClient(verify=trust))
    yield context
    await context.http.aclose()


def block(server: TokenServer, pki: Pki, **changes: Any) -> dict[str, Any]:
    return {
        "type": "customAuthorization",
        "subType": "certificateCredential",
        "endpoint": f"{server.base_url}/oauth2/token",
        "method": "POST",
        "aud": server.audience,
        "clientId": CLIENT_ID,
        "privateKeyFile": str(pki.client_key),
        "certificateFile": str(pki.client_cert),
        "tokenInResponse": "json://access_token",
        **changes,
    }


def authenticator(context: AuthContext, data: dict[str, Any]) -> CertificateCredentialAuthenticator:
    auth = build_custom(CustomAuthorizationConfig.model_validate(data), context)
    assert isinstance(auth, CertificateCredentialAuthenticator)
    return auth


def _segment(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


async def test_signed_assertion_accepted_by_the_server(
    tls_server: TokenServer, tls_context: AuthContext, pki: Pki
) -> None:
    auth = authenticator(tls_context, block(tls_server, pki))
    request = HttpRequest("POST", "https://api.example.com/x")
    await auth.apply(request)
    assert request.headers["Authorization"] == "Bearer jwt-1"
    form = tls_server.requests[0]["form"]
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID
    assert form["client_assertion_type"] == ASSERTION_TYPE
    verified = tls_server.assertions[0]
    thumbprint = x509.load_pem_x509_certificate(pki.client_cert.read_bytes()).fingerprint(hashes.SHA1())
    assert verified["header"]["alg"] == "RS256"
    assert verified["header"]["x5t"] == base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    claims = verified["claims"]
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == tls_server.audience
    assert claims["exp"] - claims["iat"] == 600


async def test_each_token_call_signs_a_fresh_assertion_with_a_unique_jti(
    tls_server: TokenServer, tls_context: AuthContext, pki: Pki
) -> None:
    auth = authenticator(
        tls_context,
        block(
            tls_server,
            pki,
            privateKeyFile=None,
            privateKey=pki.client_key_pem,
            certificateFile=None,
            certificate=pki.client_cert_pem,
            body={"bodyType": "form", "bodyParams": {"grant_type": "client_credentials", "scope": "api"}},
        ),
    )
    assert (await auth.check()).ok
    assert (await auth.check()).ok
    jtis = {a["claims"]["jti"] for a in tls_server.assertions}
    assert len(jtis) == 2
    assert tls_server.requests[0]["form"]["scope"] == "api"
    assertions = [r["form"]["client_assertion"] for r in tls_server.requests]
    assert assertions[0] != assertions[1]


async def test_server_refuses_an_assertion_signed_by_another_key(
    tls_server: TokenServer, tls_context: AuthContext, pki: Pki, tmp_path: Any
) -> None:
    from auth_server import make_pki

    other = make_pki(tmp_path)
    auth = authenticator(tls_context, block(tls_server, pki, privateKeyFile=str(other.client_key)))
    with pytest.raises(AuthenticationError) as info:
        await auth.apply(HttpRequest("POST", "https://api.example.com/x"))
    assert info.value.status == 401
    assert "(invalid_client)" in str(info.value)


async def test_unreadable_key_material_is_reported_without_content(
    tls_server: TokenServer, tls_context: AuthContext, pki: Pki, tmp_path: Any
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nS3CRET\n-----END PRIVATE KEY-----\n")
    cases = {
        "privateKeyFile": (str(bad), "not a readable PEM private key"),
        "certificateFile": (str(tmp_path / "missing.pem"), "certificateFile cannot be read"),
    }
    for field, (value, message) in cases.items():
        auth = authenticator(tls_context, block(tls_server, pki, **{field: value}))
        result = await auth.check()
        assert not result.ok
        assert message in result.message
        assert "S3CRET" not in result.message
    assert tls_server.token_requests == 0


async def test_untrusted_server_certificate_fails_the_token_call(tls_server: TokenServer, pki: Pki) -> None:
    context = AuthContext(allow_private_network=True)  # system trust store: our CA is unknown
    auth = authenticator(context, block(tls_server, pki))
    with pytest.raises(AuthenticationError) as info:
        await auth.apply(HttpRequest("POST", "https://api.example.com/x"))
    assert "unreachable (ConnectError)" in str(info.value)
    await context.aclose()


def test_assertion_claims_with_a_fixed_clock(pki: Pki) -> None:
    context = AuthContext(policy=None, wall_clock=lambda: 1_700_000_000.5)
    auth = authenticator(
        context,
        {
            **block(TokenServer(base_url="https://login.example.com"), pki),
            "aud": "https://login.example.com/token",
        },
    )
    params = auth.body_params()
    header, claims, _ = params["client_assertion"].split(".")
    assert _segment(header)["typ"] == "JWT"
    assert {k: v for k, v in _segment(claims).items() if k != "jti"} == {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": "https://login.example.com/token",
        "iat": 1_700_000_000,
        "exp": 1_700_000_600,
    }
