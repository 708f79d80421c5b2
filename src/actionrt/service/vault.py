"""Secrets typed into the service: sealed with Fernet, kept in the store, read back only by the
`console` secret provider at call time. Actions hold `{{ secrets.console:ID }}`, never a value.

The key comes from `ACTIONRT_SECRET_KEY` (a Fernet key). Without it, a loopback-only service
generates one and keeps it beside the store (`secret.key`, mode 0600) for local development.
"""

from __future__ import annotations

import os
import re
import secrets as random_tokens
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, SecretStr

from actionrt.errors import ActionrtError, Problem
from actionrt.hookspecs import hookimpl
from actionrt.secrets import DEFAULT_PROVIDER, SECRET_REF, SecretProvider, secret_refs

PROVIDER = "console"
KEY_ENV = "ACTIONRT_SECRET_KEY"
KEY_FILE = "secret.key"
# `{{ secrets.console:s_<hex> }}`: the only form the service writes.
CONSOLE_REF = re.compile(r"\{\{\s*secrets\.console:(?P<id>s_[0-9a-f]{16})\s*\}\}")
_ENCODE_BASE64 = re.compile(r"EncodeBase64\((?P<inner>[^()]*)\)")


class SecretKeyError(ActionrtError, RuntimeError):
    """No usable encryption key: the service refuses to start rather than store secrets badly."""


def load_key(store_dir: Path, *, allow_generated: bool) -> bytes:
    """The Fernet key: `ACTIONRT_SECRET_KEY`, else the dev key kept in `store_dir` (created once)."""
    configured = os.environ.get(KEY_ENV, "").strip()
    if configured:
        key = configured.encode()
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
        return key
    if not allow_generated:
        raise SecretKeyError(
            f"set {KEY_ENV} (a Fernet key) to serve on a non-loopback address: "
            "the generated development key is for 127.0.0.1 only"
        )
    path = store_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    store_dir.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start: the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def new_secret_id() -> str:
    return "s_" + random_tokens.token_hex(8)


def reference(secret_id: str) -> str:
    return "{{ secrets." + PROVIDER + ":" + secret_id + " }}"


def console_ids(value: Any) -> set[str]:
    """The console secret ids referenced anywhere in a JSON value."""
    found: set[str] = set()
    for text in _strings(value):
        found.update(m.group("id") for m in CONSOLE_REF.finditer(text))
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True, slots=True)
class SecretSlot:
    """Where an action holds a sealed secret: the dotted path of the string, and the id."""

    path: str
    secret_id: str


def secret_slots(authentication: Any, prefix: str = "authentication") -> list[SecretSlot]:
    """The sealed secrets of an authentication block, in document order."""
    slots: list[SecretSlot] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            slots.extend(SecretSlot(path, m.group("id")) for m in CONSOLE_REF.finditer(value))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(authentication, prefix)
    return slots


# The lists of an endpoint whose constant values may hold credentials (an API key header, an
# `access_token` query parameter), sealed by the same name rule as custom authentication's maps.
PARAMETER_LISTS = ("headers", "queryParameters")


def document_secret_slots(document: Mapping[str, Any]) -> list[SecretSlot]:
    """The sealed secrets of an action document: its authentication block's, then those of its
    constant header and query fields (`endpoint.headers[0].value`)."""
    slots = secret_slots(document.get("authentication", {}))
    endpoint = document.get("endpoint")
    if isinstance(endpoint, Mapping):
        for key in PARAMETER_LISTS:
            items = endpoint.get(key)
            if isinstance(items, list):
                slots += secret_slots(items, f"endpoint.{key}")
    return slots


REFERENCE_KEY = "secrets."  # `secrets.NAME`: how a test names a referenced secret it re-enters


def _credential_strings(document: Mapping[str, Any]) -> Iterator[str]:
    """The strings of a document that may carry credentials: its authentication block and its
    constant header and query values."""
    yield from _strings(document.get("authentication", {}))
    endpoint = document.get("endpoint")
    if isinstance(endpoint, Mapping):
        for key in PARAMETER_LISTS:
            for item in endpoint.get(key) or ():
                if isinstance(item, Mapping) and isinstance(item.get("value"), str):
                    yield item["value"]


def provider_references(document: Mapping[str, Any]) -> list[str]:
    """The secrets an action reads from providers rather than the console's store (`NAME` for
    the environment, `PROVIDER:NAME`), in document order, each once."""
    labels: list[str] = []
    for text in _credential_strings(document):
        for ref in secret_refs(text):
            if ref.provider != PROVIDER and ref.label not in labels:
                labels.append(ref.label)
    return labels


def substitute_references(document: Any, values: Mapping[str, str]) -> Any:
    """A copy of `document` with each `{{ secrets.[PROVIDER:]NAME }}` whose label is in
    `values` replaced by its value (credentials re-entered for one test call; never stored)."""

    def replace(match: re.Match[str]) -> str:
        provider = match.group("provider") or DEFAULT_PROVIDER
        label = match.group("name") if provider == DEFAULT_PROVIDER else f"{provider}:{match.group('name')}"
        return values.get(label, match.group(0))

    if isinstance(document, str):
        return SECRET_REF.sub(replace, document)
    if isinstance(document, Mapping):
        return {k: substitute_references(v, values) for k, v in document.items()}
    if isinstance(document, list):
        return [substitute_references(v, values) for v in document]
    return document


def seal_parameters(parameters: Any, new_secret: Callable[[str], str], stored: Any = None) -> Any:
    """Header or query fields with the constant values whose name says they are secret (see
    SECRET_NAME) sealed. A field whose name and value are those of `stored` (the list as saved)
    is kept as it is: re-saving an action must not change fields a live journey pins."""
    if not isinstance(parameters, list):
        return parameters
    kept = {
        (item.get("name"), item.get("value"))
        for item in (stored if isinstance(stored, list) else [])
        if isinstance(item, Mapping)
    }
    sealed: list[Any] = []
    for item in parameters:
        name, value = (item.get("name"), item.get("value")) if isinstance(item, Mapping) else (None, None)
        if (
            isinstance(name, str)
            and isinstance(value, str)
            and not item.get("variable")
            and SECRET_NAME.search(name)
            and (name, value) not in kept
        ):
            item = {**item, "value": _seal_text(value, new_secret)}
        sealed.append(item)
    return sealed


class Vault:
    """Encrypts and decrypts secret values; knows nothing of where ciphertexts are kept."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode("utf-8"))

    def open(self, ciphertext: bytes) -> str | None:
        """The value, or None when it was sealed with another key."""
        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken:
            return None


def seal_authentication(
    raw: Mapping[str, Any], config: BaseModel, new_secret: Callable[[str], str]
) -> dict[str, Any]:
    """The authentication block with each literal secret replaced by a console reference.

    Sealed: every secret field of the scheme's config model (passwords, API key values,
    tokens, client secrets, private keys); and in the maps the model masks as a whole (custom
    authentication's headers and body parameters), the values whose name says they are secret
    (see SECRET_NAME) — `grant_type` or `scope` stay readable. Inside `EncodeBase64(...)` only
    the argument is sealed, because the function is evaluated on the configured text before
    secrets are read. `new_secret(value)` stores one value and returns its id.
    """
    return _seal_model(dict(raw), config, new_secret)


# Names of header and body parameters whose values are treated as secrets.
SECRET_NAME = re.compile(
    r"pass|secret|token|key|auth|credential|assertion|signature|cookie|session|private", re.IGNORECASE
)


def _seal_model(raw: dict[str, Any], model: BaseModel, new_secret: Callable[[str], str]) -> dict[str, Any]:
    sealed = dict(raw)
    masked_fields: frozenset[str] = getattr(type(model), "masked_fields", frozenset())
    for name in type(model).model_fields:
        if name not in raw:
            continue
        value = getattr(model, name)
        if isinstance(value, SecretStr) and isinstance(raw[name], str):
            sealed[name] = _seal_text(raw[name], new_secret)
        elif isinstance(value, BaseModel) and isinstance(raw[name], dict):
            sealed[name] = _seal_model(raw[name], value, new_secret)
        elif name in masked_fields:
            sealed[name] = _seal_named(raw[name], None, new_secret)
    return sealed


def _seal_named(value: Any, key: str | None, new_secret: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _seal_named(v, str(k), new_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal_named(v, key, new_secret) for v in value]
    if isinstance(value, str) and key is not None and SECRET_NAME.search(key):
        return _seal_text(value, new_secret)
    return value


def _seal_text(text: str, new_secret: Callable[[str], str]) -> str:
    if not SECRET_REF.sub("", text).strip():
        return text  # only references already: they name secrets, they are not secrets
    if _ENCODE_BASE64.search(text):
        return _ENCODE_BASE64.sub(lambda m: f"EncodeBase64({_seal_text(m.group('inner'), new_secret)})", text)
    return reference(new_secret(text))


def foreign_references(
    document: Any, owned: Collection[str], known: Callable[[str], bool], prefix: str = ""
) -> list[Problem]:
    """Problems for console references an action may not hold: a sealed secret belongs to the
    action it was typed into (`owned`: the ids its stored document holds), so a reference to
    another action's secret is refused, as is one to a secret the store does not have."""
    problems: list[Problem] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            for match in CONSOLE_REF.finditer(value):
                secret_id = match.group("id")
                if secret_id in owned:
                    continue
                reason = (
                    f"console secret {secret_id!r} belongs to another action: type the value "
                    "again to seal a copy for this one"
                    if known(secret_id)
                    else f"unknown console secret {secret_id!r}"
                )
                problems.append(Problem("", path, reason))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(document, prefix)
    return problems


def substitute(document: Any, values: Mapping[str, str]) -> Any:
    """A copy of `document` with console references replaced by the values given for their ids
    (credentials re-entered for one test call; the copy is never stored)."""
    if isinstance(document, str):
        return CONSOLE_REF.sub(lambda m: values.get(m.group("id"), m.group(0)), document)
    if isinstance(document, Mapping):
        return {k: substitute(v, values) for k, v in document.items()}
    if isinstance(document, list):
        return [substitute(v, values) for v in document]
    return document


class ConsoleSecrets:
    """The `console` secret provider: `{{ secrets.console:ID }}` reads a sealed value."""

    name = PROVIDER
    checkable = True

    def __init__(self, read: Callable[[str], str | None]) -> None:
        self._read = read

    def get(self, name: str) -> str | None:
        return self._read(name)


class ConsoleSecretsPlugin:
    """Registers the `console` provider through the same hook third-party plugins use."""

    def __init__(self, provider: SecretProvider) -> None:
        self._provider = provider

    @hookimpl
    def register_secret_providers(self, register: Callable[[SecretProvider], None]) -> None:
        register(self._provider)
