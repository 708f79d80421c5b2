"""One sentinel secret pushed through every scheme and every output the auth package owns —
check messages, exceptions, reprs, masked configs, validation errors, log records — success
and failure: it appears nowhere."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import respx
from auth_server import Pki, make_pki

from actionrt.auth.base import AuthenticationError
from actionrt.auth.context import AuthContext
from actionrt.auth.mtls import ClientCertificateError, client_ssl_context
from actionrt.auth.tokens import TokenAuthenticator
from actionrt.http import HttpRequest
from actionrt.plugins import Plugins
from actionrt.secrets import MissingSecretError, SecretResolver

SENTINEL = "Zq-s3ntinel-7f1"
TOKEN_URL = "https://auth.example.com/oauth2/token"


class Secrets:
    name = "env"
    checkable = True

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@pytest.fixture(scope="module")
def locked_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("locked"), client_key_password=SENTINEL.encode())


def schemes(pki: Pki) -> dict[str, dict[str, Any]]:
    """One block per scheme (and variant), the sentinel in every secret-bearing place."""
    key_pem = pki.client_key.read_text()
    return {
        "basic": {"type": "basic", "username": "ada", "password": "{{ secrets.S }}"},
        "basic-literal": {"type": "basic", "username": "ada", "password": SENTINEL},
        "apiKey-header": {"type": "apiKey", "name": "x-key", "value": "{{ secrets.S }}"},
        "apiKey-query": {"type": "apiKey", "name": "k", "value": SENTINEL, "location": "query"},
        "bearer": {"type": "bearer", "token": "{{ secrets.S }}"},
        "custom-form": {
            "type": "customAuthorization",
            "endpoint": TOKEN_URL,
            "method": "POST",
            "headers": {"Authorization": f"Basic EncodeBase64(id:{SENTINEL})", "x-key": "{{ secrets.S }}"},
            "body": {"bodyType": "form", "bodyParams": {"password": SENTINEL}},
            "tokenInResponse": "json://access_token",
            "authorizationType": "queryParam",
            "tokenTarget": "token",
        },
        "custom-json": {
            "type": "customAuthorization",
            "endpoint": TOKEN_URL,
            "method": "POST",
            "body": {"bodyType": "json", "bodyParams": {"a": {"secret": "{{ secrets.S }}"}}},
            "tokenInResponse": "json://access_token",
            "authorizationType": "header",
            "tokenTarget": "x-token",
        },
        "custom-query-endpoint": {  # httpx logs every request's URL, query included
            "type": "customAuthorization",
            "endpoint": TOKEN_URL + "?tenant={{ secrets.S }}",
            "method": "POST",
            "body": {"bodyType": "form"},
            "tokenInResponse": "json://access_token",
        },
        "certificate": {
            "type": "customAuthorization",
            "subType": "certificateCredential",
            "endpoint": TOKEN_URL,
            "method": "POST",
            "aud": TOKEN_URL,
            "clientId": "app",
            "privateKey": key_pem,
            "privateKeyPassword": "{{ secrets.S }}",
            "certificateFile": str(pki.client_cert),
            "tokenInResponse": "json://access_token",
        },
        "oauth2-header": {
            "type": "oauth2ClientCredentials",
            "tokenEndpoint": TOKEN_URL,
            "clientId": "app",
            "clientSecret": "{{ secrets.S }}",
        },
        "oauth2-body": {
            "type": "oauth2ClientCredentials",
            "tokenEndpoint": TOKEN_URL,
            "clientId": "app",
            "clientSecret": SENTINEL,
            "clientAuthentication": "body",
        },
    }


def forbidden(pki: Pki) -> list[str]:
    """The sentinel, its usual encodings, and the private key's body."""
    key_line = pki.client_key.read_text().splitlines()[1]
    return [
        SENTINEL,
        base64.b64encode(f"id:{SENTINEL}".encode()).decode(),
        base64.b64encode(f"ada:{SENTINEL}".encode()).decode(),
        key_line,
    ]


def leaks(texts: list[str], pki: Pki) -> list[str]:
    return [t for t in texts for bad in forbidden(pki) if bad in t]


def token_answers(ok: bool) -> httpx.Response:
    if ok:  # the issued token is a secret too
        return httpx.Response(200, json={"access_token": SENTINEL, "expires_in": 600})
    return httpx.Response(
        400,
        json={"error": SENTINEL, "error_description": f"bad credentials {SENTINEL}"},
        headers={"WWW-Authenticate": f'Bearer error="{SENTINEL}"'},
    )


async def exercise(plugins: Plugins, block: dict[str, Any], ok: bool, secrets: dict[str, str]) -> list[str]:
    """Everything one scheme prints, says or raises in one success or failure run."""
    scheme = plugins.schemes[block["type"]]
    config = scheme.config_model.model_validate(block)
    shown = [repr(config), str(config), json.dumps(config.masked())]  # type: ignore[attr-defined]
    context = AuthContext(SecretResolver({"env": Secrets(secrets)}), policy=None, http=httpx.AsyncClient())
    with respx.mock(assert_all_called=False) as router:
        router.post(url__startswith=TOKEN_URL).mock(return_value=token_answers(ok))
        auth = scheme.build(config, context)
        shown.append(repr(auth))
        request = HttpRequest("POST", "https://api.example.com/x")
        try:
            await auth.apply(request)
            applied = True
        except AuthenticationError as exc:
            shown += [str(exc), repr(exc), repr(exc.args)]
            applied = False
        try:
            await auth.apply(HttpRequest("POST", "https://api.example.com/x"))  # cached / backoff
        except AuthenticationError as exc:
            shown += [str(exc), repr(exc)]
        check = await auth.check()
        shown += [check.message, repr(check)]
        auth.invalidate()
        if isinstance(auth, TokenAuthenticator) and auth._entry is not None:
            shown.append(repr(auth._entry))
    await context.aclose()
    static = block["type"] in ("basic", "apiKey", "bearer")
    assert applied == ok or (static and SENTINEL in json.dumps(block))
    return shown


async def test_sentinel_never_shown_on_success_or_failure(
    locked_pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    plugins = Plugins.load(entry_points=False)
    shown: list[str] = []
    for block in schemes(locked_pki).values():
        # success: every secret set
        shown += await exercise(plugins, block, True, {"S": SENTINEL})
        # failure: the token endpoint refuses, or (static schemes) a secret is missing
        static = block["type"] in ("basic", "apiKey", "bearer")
        shown += await exercise(plugins, block, False, {} if static else {"S": SENTINEL})
    shown += [r.getMessage() for r in caplog.records]
    shown += [r.exc_text or "" for r in caplog.records]
    assert caplog.records  # the token calls were logged, and checked
    assert leaks(shown, locked_pki) == []


def test_validation_errors_never_echo_the_input(locked_pki: Pki) -> None:
    plugins = Plugins.load(entry_points=False)
    broken = {
        "basic": {"type": "basic", "password": SENTINEL, "extra": SENTINEL},
        "apiKey": {"type": "apiKey", "name": SENTINEL + " x", "value": SENTINEL, "location": 1},
        "customAuthorization": {
            "type": "customAuthorization",
            "endpoint": f"ftp://{SENTINEL}",
            "method": SENTINEL,
            "headers": {"x": f"{{{{ {SENTINEL} }}}}"},
            "tokenInResponse": SENTINEL,
            "body": {"bodyType": "form", "bodyParams": {"p": {"n": SENTINEL}}},
        },
        "oauth2ClientCredentials": {
            "type": "oauth2ClientCredentials",
            "tokenEndpoint": TOKEN_URL,
            "clientId": "a",
            "clientSecret": 12,
            "scope": {SENTINEL: 1},
        },
    }
    texts: list[str] = []
    for kind, block in broken.items():
        with pytest.raises(pydantic.ValidationError) as info:
            plugins.schemes[kind].config_model.model_validate(block)
        texts.append(str(info.value))
        texts += [e["msg"] for e in info.value.errors()]
    assert leaks(texts, locked_pki) == []


def test_secret_and_certificate_errors_name_never_value(locked_pki: Pki, tmp_path: Path) -> None:
    resolver = SecretResolver({"env": Secrets({})})
    with pytest.raises(MissingSecretError) as missing:
        resolver.resolve("{{ secrets.S }}")
    with pytest.raises(ClientCertificateError) as wrong:
        client_ssl_context(str(locked_pki.client_cert), str(locked_pki.client_key), "nope")
    assert leaks([str(missing.value), str(wrong.value)], locked_pki) == []
    assert client_ssl_context(str(locked_pki.client_cert), str(locked_pki.client_key), SENTINEL)
