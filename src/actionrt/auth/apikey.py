"""API key: a named header or query parameter carrying a key (normally a secret)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from actionrt.auth.basic import StaticHeaderAuthenticator
from actionrt.auth.models import ApiKeyConfig

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext


class ApiKeyAuthenticator(StaticHeaderAuthenticator):
    """`location: header` sets header `name`; `location: query` appends `name=<key>`."""

    def __init__(self, config: ApiKeyConfig, context: AuthContext) -> None:
        in_query = config.location == "query"
        super().__init__(in_query=in_query, name=config.name)
        self._key = context.secrets.compile(config.value.get_secret_value())
        self._query_name = quote(config.name, safe="")

    def build_value(self) -> str:
        if self._in_query:
            return f"{self._query_name}={quote(self._key(), safe='')}"
        return self._key()

    def describe(self) -> str:
        if self._in_query:
            return f"query parameter {self._query_name}=***"
        return f"header {self._name}: ***"
