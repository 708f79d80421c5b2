"""Secrets: `{{ secrets.NAME }}` references and the providers that resolve them."""

from __future__ import annotations

import os
import re
from typing import Protocol

SECRET_REF = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


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


def secret_names(text: str) -> list[str]:
    """The secret names referenced in `text`."""
    return SECRET_REF.findall(text)
