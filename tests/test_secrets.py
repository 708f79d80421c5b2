"""Secret references, providers (environment, files, plugins) and the load-time check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from actionrt.hookspecs import hookimpl
from actionrt.plugins import Plugins
from actionrt.secrets import (
    EnvironmentSecrets,
    FileSecrets,
    MissingSecret,
    MissingSecretError,
    SecretProvider,
    SecretRef,
    SecretResolver,
    has_secrets,
    missing_secrets,
    secret_refs,
)


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "TENANT,PRESENT,ABSENT,ONE")


class Vault:
    """A provider that cannot be checked ahead: its secrets are known only when read."""

    name = "vault"
    checkable = False

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def test_references_are_parsed_with_optional_provider() -> None:
    text = "a {{ secrets.ONE }} b {{secrets.vault:db/password}} c {{ secret.NOT }}"
    assert secret_refs(text) == [SecretRef("env", "ONE"), SecretRef("vault", "db/password")]
    assert [ref.label for ref in secret_refs(text)] == ["ONE", "vault:db/password"]
    assert has_secrets(text)
    assert not has_secrets("plain {{ value }}")


def test_compiled_text_reads_secrets_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANT", "acme")
    compile_secret_text = SecretResolver().compile
    render = compile_secret_text("id-{{ secrets.TENANT }}-x")
    assert render() == "id-acme-x"
    monkeypatch.setenv("TENANT", "globex")
    assert render() == "id-globex-x"
    assert compile_secret_text("{{ secrets.TENANT }}")() == "globex"
    constant = compile_secret_text("no secrets here")
    assert constant() == "no secrets here"
    monkeypatch.delenv("TENANT")
    with pytest.raises(MissingSecretError, match=r"^secret 'TENANT' is not set$"):
        render()


def test_file_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "api_key").write_text("k-123\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "pw").write_text("p")
    files = FileSecrets(tmp_path)
    assert files.get("api_key") == "k-123"
    assert files.get("nested/pw") == "p"
    assert files.get("../etc/passwd") is None
    assert files.get("/etc/passwd") is None
    assert files.get("absent") is None
    monkeypatch.setenv("ACTIONRT_SECRETS_DIR", str(tmp_path))
    resolver = SecretResolver({"env": EnvironmentSecrets(), "file": FileSecrets()})
    assert resolver.resolve("{{ secrets.file:api_key }}") == "k-123"


def test_unknown_provider_is_named() -> None:
    with pytest.raises(MissingSecretError, match="unknown secret provider 'nope'"):
        SecretResolver().resolve("{{ secrets.nope:X }}")


def test_missing_secrets_reports_paths_and_names_of_checkable_providers_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRESENT", "x")
    monkeypatch.delenv("ABSENT", raising=False)
    vault = Vault()
    block = {
        "type": "customAuthorization",
        "headers": {"Authorization": "Basic EncodeBase64({{ secrets.PRESENT }}:{{ secrets.ABSENT }})"},
        "body": {
            "bodyParams": {
                "list": ["{{ secrets.ABSENT }}"],
                "v": "{{ secrets.vault:a }}",
                "u": "{{ secrets.other:b }}",
            }
        },
    }
    found = missing_secrets(block, {"env": EnvironmentSecrets(), "vault": vault})
    assert found == [
        MissingSecret("headers.Authorization", "ABSENT"),
        MissingSecret("body.bodyParams.list.0", "ABSENT"),
        MissingSecret("body.bodyParams.u", "other:b", "names an unknown secret provider 'other'"),
    ]
    assert str(found[0]) == "headers.Authorization: secret 'ABSENT' is not set"
    assert tuple(found[0]) == ("headers.Authorization", "ABSENT", "is not set")  # plain tuples
    # the vault secret is not checked ahead; at first use it is reported by name
    with pytest.raises(MissingSecretError, match="'vault:a'"):
        SecretResolver({"vault": vault}).resolve("{{ secrets.vault:a }}")


def test_providers_register_through_the_plugin_hook() -> None:
    vault = Vault()
    vault.values["token"] = "from-vault"

    class VaultPlugin:
        @hookimpl
        def register_secret_providers(self, register: Callable[[SecretProvider], None]) -> None:
            register(vault)

    plugins = Plugins.load([VaultPlugin()], entry_points=False)
    assert set(plugins.secret_providers) == {"env", "file", "vault"}
    resolver = SecretResolver(plugins.secret_providers)
    assert resolver.resolve("Bearer {{ secrets.vault:token }}") == "Bearer from-vault"
