"""No authentication, and HTTP Basic: `Authorization: Basic base64(username:password)`."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from actionrt.auth.base import AuthCheck, AuthenticationError
from actionrt.auth.models import BasicAuthConfig
from actionrt.auth.tokens import with_query
from actionrt.guard import control_character
from actionrt.http import HttpRequest
from actionrt.secrets import MissingSecretError

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext


class NoAuthenticator:
    """`{type: none}`: the request goes as it is."""

    async def apply(self, request: HttpRequest) -> None:
        return None

    def invalidate(self, request: HttpRequest | None = None) -> None:
        return None

    async def check(self) -> AuthCheck:
        return AuthCheck(True, "no authentication: nothing is added to the request")

    def __repr__(self) -> str:
        return "NoAuthenticator()"


class StaticHeaderAuthenticator:
    """Credentials that are one fixed header or query value, built from secrets on first use and
    kept until `invalidate()` (a 401 re-reads the secrets, so a rotated one is picked up)."""

    def __init__(self, *, in_query: bool, name: str) -> None:
        self._in_query = in_query
        self._name = name
        self._value: str | None = None

    def build_value(self) -> str:
        """The header value, or the encoded `name=value` query piece; secrets resolved."""
        raise NotImplementedError

    def describe(self) -> str:
        """What would be sent, secrets masked."""
        raise NotImplementedError

    async def apply(self, request: HttpRequest) -> None:
        value = self._value
        if value is None:
            value = self._value = self._resolved()
        if self._in_query:
            request.url = with_query(request.url, value)
        else:
            request.headers[self._name] = value

    def invalidate(self, request: HttpRequest | None = None) -> None:
        self._value = None

    async def check(self) -> AuthCheck:
        try:
            self._resolved()
        except AuthenticationError as exc:
            return AuthCheck(False, str(exc))
        return AuthCheck(True, f"would send {self.describe()}")

    def _resolved(self) -> str:
        try:
            value = self.build_value()
        except MissingSecretError as exc:
            raise AuthenticationError(str(exc)) from None
        # A secret from a file or a vault may hold any character: in a header, a control
        # character would go on the wire (a query piece is percent-encoded already).
        what = None if self._in_query else control_character(value)
        if what is not None:
            raise AuthenticationError(f"header {self._name!r}: value contains {what}")
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class BasicAuthenticator(StaticHeaderAuthenticator):
    """HTTP Basic (RFC 7617), UTF-8 credentials."""

    def __init__(self, config: BasicAuthConfig, context: AuthContext) -> None:
        super().__init__(in_query=False, name="Authorization")
        self._username = context.secrets.compile(config.username)
        self._password = context.secrets.compile(config.password.get_secret_value())
        self._shown_username = config.username

    def build_value(self) -> str:
        pair = f"{self._username()}:{self._password()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def describe(self) -> str:
        return f"Authorization: Basic *** (username {self._shown_username})"
