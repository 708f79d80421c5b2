"""Sealed secrets: the key, what is sealed in an authentication block, and substitution."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from actionrt.plugins import Plugins
from actionrt.service.vault import (
    CONSOLE_REF,
    KEY_ENV,
    SecretKeyError,
    Vault,
    load_key,
    seal_authentication,
    secret_slots,
    substitute,
)


def seal(raw: dict, plugins: Plugins) -> tuple[dict, dict[str, str]]:
    config = plugins.schemes[raw["type"]].config_model.model_validate(raw)
    stored: dict[str, str] = {}

    def new_secret(value: str) -> str:
        secret_id = f"s_{len(stored):016x}"
        stored[secret_id] = value
        return secret_id

    return seal_authentication(raw, config, new_secret), stored


def test_the_key_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv(KEY_ENV, key.decode())
    assert load_key(tmp_path, allow_generated=False) == key
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        load_key(tmp_path, allow_generated=True)


def test_a_development_key_is_generated_once_private_and_only_for_loopback(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(SecretKeyError, match=KEY_ENV):
        load_key(tmp_path, allow_generated=False)
    first = load_key(tmp_path, allow_generated=True)
    assert load_key(tmp_path, allow_generated=True) == first
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    vault = Vault(first)
    assert vault.open(vault.seal("pw")) == "pw"
    assert Vault(Fernet.generate_key()).open(vault.seal("pw")) is None


def test_basic_and_api_key_secrets_are_sealed(plugins: Plugins) -> None:
    sealed, stored = seal({"type": "basic", "username": "ada", "password": "pw"}, plugins)
    assert sealed["username"] == "ada"
    assert CONSOLE_REF.fullmatch(sealed["password"]) and list(stored.values()) == ["pw"]
    sealed, stored = seal({"type": "apiKey", "name": "appid", "value": "k-1", "location": "query"}, plugins)
    assert (sealed["name"], sealed["location"]) == ("appid", "query")
    assert list(stored.values()) == ["k-1"]


def test_references_to_other_secrets_are_kept_as_written(plugins: Plugins) -> None:
    sealed, stored = seal({"type": "basic", "username": "ada", "password": "{{ secrets.PW }}"}, plugins)
    assert sealed["password"] == "{{ secrets.PW }}" and stored == {}


def test_custom_authentication_seals_secret_named_values_and_encode_base64_arguments(
    plugins: Plugins,
) -> None:
    raw = {
        "type": "customAuthorization",
        "endpoint": "https://auth.example.com/token",
        "method": "POST",
        "headers": {"Authorization": "Basic EncodeBase64(id:secret)", "x-retailer": "shop-1"},
        "body": {
            "bodyType": "form",
            "bodyParams": {"grant_type": "password", "username": "u", "password": "p"},
        },
        "tokenInResponse": "json://access_token",
    }
    sealed, stored = seal(raw, plugins)
    header = sealed["headers"]["Authorization"]
    assert header.startswith("Basic EncodeBase64({{ secrets.console:") and header.endswith("}})")
    assert sealed["headers"]["x-retailer"] == "shop-1"
    params = sealed["body"]["bodyParams"]
    assert (params["grant_type"], params["username"]) == ("password", "u")
    assert sorted(stored.values()) == ["id:secret", "p"]
    slots = secret_slots(sealed)
    assert [s.path for s in slots] == [
        "authentication.headers.Authorization",
        "authentication.body.bodyParams.password",
    ]
    back = substitute(sealed, stored)
    assert back["headers"]["Authorization"] == "Basic EncodeBase64(id:secret)"
    assert back["body"]["bodyParams"]["password"] == "p"
