"""Bearer: a static token, `Authorization: Bearer <token>`, normally `{{ secrets.NAME }}`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actionrt.auth.basic import StaticHeaderAuthenticator
from actionrt.auth.models import BearerConfig

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext


class BearerAuthenticator(StaticHeaderAuthenticator):
    """A token that is configured, not fetched; a 401 re-reads it from its secret."""

    def __init__(self, config: BearerConfig, context: AuthContext) -> None:
        super().__init__(in_query=False, name="Authorization")
        self._token = context.secrets.compile(config.token.get_secret_value())

    def build_value(self) -> str:
        return f"Bearer {self._token()}"

    def describe(self) -> str:
        return "Authorization: Bearer ***"
