"""Secrets: `{{ secrets.NAME }}` references and the providers that resolve them.

`{{ secrets.NAME }}` reads the default provider (`env`: the environment variable NAME, when the
operator allows that name); `{{ secrets.PROVIDER:NAME }}` reads a provider registered through
`register_secret_providers` (`file` is built in: a file named NAME in `$ACTIONRT_SECRETS_DIR`,
default `/run/secrets`). A template is compiled once into a function; values are read when that
function runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
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


ENV_SECRETS_ENV = "ACTIONRT_ENV_SECRETS"
"""The default allow-list of the environment provider: names and `PREFIX*`, comma-separated."""
RESERVED_PREFIX = "ACTIONRT_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvironmentSecrets:
    """Secrets from environment variables of the same name, but only the names the operator
    allows: `EnvironmentSecrets(["CRM_TOKEN", "SMS_*"])` reads `CRM_TOKEN` and every variable
    starting with `SMS_`. Without a list it follows `$ACTIONRT_ENV_SECRETS` (same form,
    comma-separated), else reads nothing: the process environment also holds credentials no
    action should see (cloud keys, database URLs). `ACTIONRT_*` (actionrt's own settings and
    keys) is never readable.
    """

    name = "env"
    checkable = True

    def __init__(self, allowed: Iterable[str] | None = None) -> None:
        self._fixed = None if allowed is None else _allow_list(list(allowed), "env_secrets")
        self._configured = ("", _allow_list([], ENV_SECRETS_ENV))
        self._allowed()  # a malformed $ACTIONRT_ENV_SECRETS is refused now, not at a call

    def _allowed(self) -> tuple[frozenset[str], tuple[str, ...]]:
        if self._fixed is not None:
            return self._fixed
        text = os.environ.get(ENV_SECRETS_ENV, "")
        if text != self._configured[0]:  # parsed again only when it changes (tests set it)
            items = [item.strip() for item in text.split(",") if item.strip()]
            self._configured = (text, _allow_list(items, ENV_SECRETS_ENV))
        return self._configured[1]

    def refusal(self, name: str) -> str | None:
        """Why `name` may not be read (None: it may)."""
        if name.upper().startswith(RESERVED_PREFIX):
            return f"may not be read: {RESERVED_PREFIX}* variables are actionrt's own settings, never secrets"
        names, prefixes = self._allowed()
        if name in names or name.startswith(prefixes):
            return None
        return (
            "may not be read from the environment: the operator allows names with "
            f"env_secrets=[{name!r}] (serve --env-secret {name}, or {ENV_SECRETS_ENV}={name})"
        )

    def get(self, name: str) -> str | None:
        names, prefixes = self._allowed()
        # An allowed prefix never covers ACTIONRT_* (`_allow_list` refuses such prefixes).
        if name in names or name.startswith(prefixes):
            return os.environ.get(name)
        return None


def _allow_list(items: list[str], where: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """Names and prefixes (`PREFIX*`) of an allow-list; ValueError naming a bad item."""
    names: set[str] = set()
    prefixes: list[str] = []
    for item in items:
        is_prefix = item.endswith("*")
        word = item[:-1] if is_prefix else item
        if not _ENV_NAME.fullmatch(word):
            raise ValueError(f"{where}: {item!r} is not an environment variable name, or a non-empty PREFIX*")
        upper = word.upper()
        if upper.startswith(RESERVED_PREFIX) or (is_prefix and RESERVED_PREFIX.startswith(upper)):
            raise ValueError(f"{where}: {item!r} would expose {RESERVED_PREFIX}* variables, never secrets")
        if is_prefix:
            prefixes.append(word)
        else:
            names.add(word)
    return frozenset(names), tuple(prefixes)


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
    """A secret found missing at load time: where it is referenced, its name, and why."""

    path: str  # dotted field path inside the checked block, e.g. `body.bodyParams.password`
    name: str  # `NAME` or `PROVIDER:NAME`
    reason: str = "is not set"

    def __str__(self) -> str:
        return f"{self.path}: secret {self.name!r} {self.reason}"


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
            raise MissingSecretError(ref, _why_missing(provider, ref.name))
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


def refused_secrets(
    block: Any, providers: Mapping[str, SecretProvider] | SecretResolver | None = None
) -> list[MissingSecret]:
    """The secrets referenced in `block` that a provider refuses to read whatever its value
    (a name outside the environment's allow-list); set or not, never an action's to read."""
    resolver = providers if isinstance(providers, SecretResolver) else SecretResolver(providers)
    found: list[MissingSecret] = []
    for missing in missing_secrets(block, resolver):
        ref = _ref_of(missing.name)
        provider = resolver.providers.get(ref.provider)
        refusal = getattr(provider, "refusal", None)
        if refusal is not None and refusal(ref.name) is not None:
            found.append(missing)
    return found


def _ref_of(label: str) -> SecretRef:
    provider, _, name = label.rpartition(":")
    return SecretRef(provider or DEFAULT_PROVIDER, name)


def missing_secrets(
    block: Any, providers: Mapping[str, SecretProvider] | SecretResolver | None = None
) -> list[MissingSecret]:
    """Secrets referenced anywhere in `block` (a dict, list or string) that are known missing now,
    each with why: not set, not allowed (the environment's allow-list), or an unknown provider.

    Only providers that are `checkable` are asked. Others are checked at first use. Paths are
    dotted, relative to `block`.
    """
    resolver = providers if isinstance(providers, SecretResolver) else SecretResolver(providers)
    found: list[MissingSecret] = []
    _walk_missing(block, "", resolver.providers, found)
    return found


def _why_missing(provider: SecretProvider, name: str) -> str:
    refusal: Callable[[str], str | None] | None = getattr(provider, "refusal", None)
    return (refusal(name) if refusal is not None else None) or "is not set"


def _walk_missing(
    value: Any, path: str, providers: Mapping[str, SecretProvider], found: list[MissingSecret]
) -> None:
    if isinstance(value, str):
        for ref in secret_refs(value):
            provider = providers.get(ref.provider)
            if provider is None:
                reason = f"names an unknown secret provider {ref.provider!r}"
                found.append(MissingSecret(path, ref.label, reason))
            elif provider.checkable and provider.get(ref.name) is None:
                found.append(MissingSecret(path, ref.label, _why_missing(provider, ref.name)))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk_missing(item, f"{path}.{key}" if path else str(key), providers, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk_missing(item, f"{path}.{index}" if path else str(index), providers, found)
    elif hasattr(value, "get_secret_value"):  # a pydantic SecretStr
        _walk_missing(value.get_secret_value(), path, providers, found)
