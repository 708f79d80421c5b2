"""The static schemes: none, basic, apiKey (header or query) and bearer."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from actionrt.auth.base import AuthenticationError, Authenticator
from actionrt.auth.context import AuthContext
from actionrt.http import HttpRequest
from actionrt.plugins import Plugins
from actionrt.secrets import MappingSecrets, SecretResolver


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "API_PASSWORD,KEY,TOKEN,NOPE")


def build(plugins: Plugins, block: dict[str, Any]) -> Authenticator:
    scheme = plugins.schemes[block["type"]]
    return scheme.build(scheme.config_model.model_validate(block), AuthContext(policy=None))


def request() -> HttpRequest:
    return HttpRequest("GET", "https://api.example.com/v1/items?page=2")


async def test_none_adds_nothing(plugins: Plugins) -> None:
    auth = build(plugins, {"type": "none"})
    req = request()
    await auth.apply(req)
    assert (req.headers, req.url) == ({}, "https://api.example.com/v1/items?page=2")
    assert (await auth.check()).ok


async def test_basic_utf8_credentials_from_secrets(plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PASSWORD", "pässword")
    auth = build(plugins, {"type": "basic", "username": "ada", "password": "{{ secrets.API_PASSWORD }}"})
    req = request()
    await auth.apply(req)
    assert req.headers["Authorization"] == "Basic " + base64.b64encode("ada:pässword".encode()).decode()
    check = await auth.check()
    assert (check.ok, check.message) == (True, "would send Authorization: Basic *** (username ada)")


async def test_api_key_in_header_and_in_query(plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY", "k&y=1")
    header = build(plugins, {"type": "apiKey", "name": "x-api-key", "value": "{{ secrets.KEY }}"})
    req = request()
    await header.apply(req)
    assert req.headers == {"x-api-key": "k&y=1"}
    assert (await header.check()).message == "would send header x-api-key: ***"
    query = build(
        plugins,
        {"type": "apiKey", "name": "appid", "value": "{{ secrets.KEY }}", "location": "query"},
    )
    req = request()
    await query.apply(req)
    assert req.url == "https://api.example.com/v1/items?page=2&appid=k%26y%3D1"
    assert (await query.check()).message == "would send query parameter appid=***"


async def test_bearer_and_rotation_after_invalidate(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "one")
    auth = build(plugins, {"type": "bearer", "token": "{{ secrets.TOKEN }}"})
    req = request()
    await auth.apply(req)
    assert req.headers["Authorization"] == "Bearer one"
    monkeypatch.setenv("TOKEN", "two")
    req = request()
    await auth.apply(req)
    assert req.headers["Authorization"] == "Bearer one"  # built once, not per call
    auth.invalidate()  # a 401: the secret is read again
    req = request()
    await auth.apply(req)
    assert req.headers["Authorization"] == "Bearer two"


async def test_missing_secret_named_at_first_use_and_by_check(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    auth = build(plugins, {"type": "bearer", "token": "{{ secrets.NOPE }}"})
    with pytest.raises(AuthenticationError, match=r"^secret 'NOPE' is not set$"):
        await auth.apply(request())
    check = await auth.check()
    assert (check.ok, check.message) == (False, "secret 'NOPE' is not set")


async def test_a_secret_with_control_characters_is_not_sent_in_a_header(plugins: Plugins) -> None:
    # Environment variables can't hold NUL, but a file or a vault can: such a value would go
    # on the wire as is (CR and LF are stopped by the transport, the others were not).
    secrets = SecretResolver({"env": MappingSecrets({"KEY": "ab\x00cd", "TOKEN": "t\x7fk"})})

    def built(block: dict[str, Any]) -> Authenticator:
        scheme = plugins.schemes[block["type"]]
        return scheme.build(scheme.config_model.model_validate(block), AuthContext(secrets))

    key = built({"type": "apiKey", "name": "x-api-key", "value": "{{ secrets.KEY }}"})
    with pytest.raises(AuthenticationError, match=r"^header 'x-api-key': value contains NUL$"):
        await key.apply(request())
    assert not (await key.check()).ok
    bearer = built({"type": "bearer", "token": "{{ secrets.TOKEN }}"})
    with pytest.raises(AuthenticationError, match="value contains control character"):
        await bearer.apply(request())
    in_query = built({"type": "apiKey", "name": "k", "value": "{{ secrets.KEY }}", "location": "query"})
    req = request()
    await in_query.apply(req)  # percent-encoded in a URL: harmless
    assert req.url.endswith("&k=ab%00cd")
