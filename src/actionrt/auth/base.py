"""The one small interface every authentication scheme implements.

A scheme is registered through the `register_auth_schemes` hook. At load time its
`config_model` validates the action's `authentication` block; when a Runtime starts, `build`
turns that config into an `Authenticator`, kept for the life of the runtime.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from actionrt.errors import ActionrtError
from actionrt.http import HttpRequest

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext


class AuthenticationError(ActionrtError):
    """Credentials could not be applied: the token endpoint failed (its status in the message),
    a secret is missing, or the token response had no token. One line; never a secret.

    Raised by `Authenticator.apply()`; the engine reports it as `internalError` with this
    message in `error`, and sends nothing to the action endpoint.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        self.status = status  # the token endpoint's HTTP status, when it answered
        self.transient = transient  # another token request may succeed (no answer, 429, 503...)
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class AuthCheck:
    """The outcome of checking an action's authentication without calling the action."""

    ok: bool
    message: str  # one line; secrets masked


class Authenticator(Protocol):
    """Applies credentials to an outgoing request. Built once; called for every attempt."""

    async def apply(self, request: HttpRequest) -> None:
        """Add the credentials to `request` (headers or query), fetching a token if needed."""

    def invalidate(self) -> None:
        """Forget any cached token (the endpoint answered 401).

        The built-in authenticators also accept `invalidate(request)`: the request that got the
        401; the token is then dropped only if that request carried the current token, so a
        burst of 401s from calls sent with an old token causes one refresh, not many.
        """

    async def check(self) -> AuthCheck:
        """Call only the token endpoint, or describe what would be sent (secrets masked)."""


@dataclass(frozen=True, slots=True)
class AuthScheme:
    """A named authentication scheme: how its config is validated and how it is built."""

    type: str
    config_model: builtins.type[BaseModel]  # `type` is shadowed by the field above
    build: Callable[[Any, AuthContext], Authenticator]
    description: str = ""
