"""Secrets: `{{ secrets.NAME }}` references and the providers that resolve them.

`{{ secrets.NAME }}` reads the default provider (`env`: the environment variable NAME);
`{{ secrets.PROVIDER:NAME }}` reads a provider registered through `register_secret_providers`
(`file` is built in: a file named NAME in `$ACTIONRT_SECRETS_DIR`, default `/run/secrets`).
A template is compiled once into a function; values are read when that function runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from actionrt.errors import ActionrtError

SECRET_REF = re.compile(
    r"\{\{\s*secrets\.(?:(?P<provider>[A-Za-z][A-Za-z0-9_-]*):)?"
    r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_./-]*)\s*\}\}"
)
# Any `{{ ... }}`: in an authentication block each one must be a SECRET_REF.
ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
DEFAULT_PROVIDER = "env"


class SecretProvider(Protocol):
    """Resolves a secret by name. `name` identifies the provider (`env` is built in)."""

    name: str
    checkable: bool  # True when presence can be checked at load time

    def get(self, name: str) -> str | None: ...


class EnvironmentSecrets:
    """Secrets from environment variables of the same name."""

    name = "env"
    checkable = True

    def get(self, name: str) -> str | None:
        return os.environ.get(name)


class MappingSecrets:
    """Secrets from a mapping, for engines that hold their own: `MappingSecrets({"TOKEN": "t"})`."""

    checkable = True

    def __init__(self, values: Mapping[str, str], *, name: str = DEFAULT_PROVIDER) -> None:
        self.name = name
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)


class FileSecrets:
    """Secrets from files: `{{ secrets.file:NAME }}` reads `<directory>/NAME` (trailing newline
    dropped), the layout of Docker and Kubernetes secrets. The directory is
    `$ACTIONRT_SECRETS_DIR`, else `/run/secrets`."""

    name = "file"
    checkable = True

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        return Path(self._directory or os.environ.get("ACTIONRT_SECRETS_DIR") or "/run/secrets")

    def get(self, name: str) -> str | None:
        # A name is a relative path inside the directory, never a way out of it.
        if name.startswith("/") or ".." in name.split("/"):
            return None
        try:
            return (self.directory / name).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One `{{ secrets.[PROVIDER:]NAME }}` reference."""

    provider: str
    name: str

    @property
    def label(self) -> str:
        """How the reference is named in messages: `NAME` or `PROVIDER:NAME`."""
        return self.name if self.provider == DEFAULT_PROVIDER else f"{self.provider}:{self.name}"


class MissingSecretError(ActionrtError, LookupError):
    """A referenced secret has no value (or names an unknown provider). Names it, never a value."""

    def __init__(self, ref: SecretRef, reason: str = "is not set") -> None:
        self.ref = ref
        super().__init__(f"secret {ref.label!r} {reason}")


class MissingSecret(NamedTuple):
    """A secret found missing at load time: where it is referenced and its name."""

    path: str  # dotted field path inside the checked block, e.g. `body.bodyParams.password`
    name: str  # `NAME` or `PROVIDER:NAME`

    def __str__(self) -> str:
        return f"{self.path}: secret {self.name!r} is not set"


def secret_refs(text: str) -> list[SecretRef]:
    """The secret references in `text`, in order."""
    return [
        SecretRef(m.group("provider") or DEFAULT_PROVIDER, m.group("name")) for m in SECRET_REF.finditer(text)
    ]


def has_secrets(text: str) -> bool:
    """True when `text` references at least one secret."""
    return SECRET_REF.search(text) is not None


class SecretResolver:
    """Resolves references against a fixed set of providers (one per Runtime)."""

    __slots__ = ("_providers",)

    def __init__(self, providers: Mapping[str, SecretProvider] | None = None) -> None:
        self._providers: dict[str, SecretProvider] = (
            dict(providers) if providers is not None else {"env": EnvironmentSecrets()}
        )

    @property
    def providers(self) -> Mapping[str, SecretProvider]:
        return self._providers

    def get(self, ref: SecretRef) -> str:
        """The secret's value; `MissingSecretError` when it has none."""
        provider = self._providers.get(ref.provider)
        if provider is None:
            raise MissingSecretError(ref, f"names an unknown secret provider {ref.provider!r}")
        value = provider.get(ref.name)
        if value is None:
            raise MissingSecretError(ref)
        return value

    def compile(self, text: str) -> Callable[[], str]:
        """`text` as a function returning it with every reference replaced by its value.

        Parsed once; each call reads the providers (so a rotated secret is picked up) and
        raises `MissingSecretError` for a secret without a value.
        """
        parts: list[str | SecretRef] = []
        position = 0
        for match in SECRET_REF.finditer(text):
            if match.start() > position:
                parts.append(text[position : match.start()])
            parts.append(SecretRef(match.group("provider") or DEFAULT_PROVIDER, match.group("name")))
            position = match.end()
        if not any(isinstance(p, SecretRef) for p in parts):
            return _constant(text)
        if position < len(text):
            parts.append(text[position:])
        if len(parts) == 1:
            only = parts[0]
            assert isinstance(only, SecretRef)
            return lambda: self.get(only)
        frozen = tuple(parts)
        get = self.get
        return lambda: "".join(p if isinstance(p, str) else get(p) for p in frozen)

    def resolve(self, text: str) -> str:
        """`text` with its references replaced (compile + call, for one-off use)."""
        return self.compile(text)()

    def resolve_json(self, value: Any) -> Any:
        """A JSON value with every string resolved (dict keys are left as they are)."""
        if isinstance(value, str):
            return self.resolve(value) if has_secrets(value) else value
        if isinstance(value, dict):
            return {k: self.resolve_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_json(v) for v in value]
        return value


def _constant(text: str) -> Callable[[], str]:
    return lambda: text


def missing_secrets(
    block: Any, providers: Mapping[str, SecretProvider] | SecretResolver | None = None
) -> list[MissingSecret]:
    """Secrets referenced anywhere in `block` (a dict, list or string) that are known missing now.

    Only providers that are `checkable` are asked; a reference to an unknown provider is
    reported too. Others are checked at first use. Paths are dotted, relative to `block`.
    """
    resolver = providers if isinstance(providers, SecretResolver) else SecretResolver(providers)
    found: list[MissingSecret] = []
    _walk_missing(block, "", resolver.providers, found)
    return found


def _walk_missing(
    value: Any, path: str, providers: Mapping[str, SecretProvider], found: list[MissingSecret]
) -> None:
    if isinstance(value, str):
        for ref in secret_refs(value):
            provider = providers.get(ref.provider)
            if provider is None or (provider.checkable and provider.get(ref.name) is None):
                found.append(MissingSecret(path, ref.label))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk_missing(item, f"{path}.{key}" if path else str(key), providers, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk_missing(item, f"{path}.{index}" if path else str(index), providers, found)
    elif hasattr(value, "get_secret_value"):  # a pydantic SecretStr
        _walk_missing(value.get_secret_value(), path, providers, found)
