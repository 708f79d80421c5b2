"""The one small interface every authentication scheme implements.

A scheme is registered through the `register_auth_schemes` hook. At load time its
`config_model` validates the action's `authentication` block; when a Runtime starts, `build`
turns that config into an `Authenticator`, kept for the life of the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from actionrt.http import HttpRequest

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext


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
        """Forget any cached token (the endpoint answered 401)."""

    async def check(self) -> AuthCheck:
        """Call only the token endpoint, or describe what would be sent (secrets masked)."""


@dataclass(frozen=True, slots=True)
class AuthScheme:
    """A named authentication scheme: how its config is validated and how it is built."""

    type: str
    config_model: type[BaseModel]
    build: Callable[[Any, AuthContext], Authenticator]
    description: str = ""
