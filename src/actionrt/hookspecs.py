"""The hook specifications: how plugins (built-in and third-party) extend actionrt.

Every hook is asked once, when a Runtime starts or a registry loads; never per call. Hooks that
contribute things receive a `register` callback and call it once per thing; the runtime keeps the
objects and calls their methods directly on the call path. A name (of a scheme, connector,
function, filter, secret provider) belongs to the plugin that registered it first: replacing one
takes `register(thing, override=True)`. Hooks are synchronous (pluggy has no
async support): a hook that needs async work returns an awaitable (`actionrt_startup`) or an object
whose methods are async. No hook here is `firstresult`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    from actionrt.auth.base import AuthScheme
    from actionrt.connectors import Connector
    from actionrt.events import EventSink
    from actionrt.secrets import SecretProvider

_Thing = TypeVar("_Thing", contravariant=True)


class Register(Protocol[_Thing]):
    """The `register` callback of a registration hook: once per contributed thing."""

    def __call__(self, thing: _Thing, /, *, override: bool = False) -> None:
        """Contribute `thing`; `override=True` replaces a name another plugin registered first."""


class RegisterNamed(Protocol):
    """`register(name, function)` of `register_expression_functions`."""

    def __call__(self, name: str, function: Callable[..., Any], /, *, override: bool = False) -> None:
        """Contribute `function` as `name`; `override=True` replaces another plugin's `name`."""


PROJECT = "actionrt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- asked when a Runtime (or a Registry) loads: what plugins contribute ----------------------


@hookspec
def register_auth_schemes(register: Register[AuthScheme]) -> None:
    """Register authentication schemes, each under its `type` name."""


@hookspec
def register_connectors(register: Register[Connector]) -> None:
    """Register connectors: named bundles of action templates and API-specific code."""


@hookspec
def register_expression_functions(
    register: RegisterNamed,
    register_filter: RegisterNamed,
) -> None:
    """Register functions and filters usable in journey mapping expressions, by name."""


@hookspec
def register_secret_providers(register: Register[SecretProvider]) -> None:
    """Register secret providers, each under its `name` (`env` and `file` are built in)."""


@hookspec
def register_event_sinks(register: Callable[[EventSink], None]) -> None:
    """Register sinks that receive one step event per invocation."""


# -- the Runtime's lifecycle ---------------------------------------------------------------------


@hookspec
def actionrt_startup(runtime: Any) -> Awaitable[None] | None:
    """Called once when a Runtime opens, after its actions are loaded; may return an awaitable."""


@hookspec
def actionrt_shutdown(runtime: Any) -> Awaitable[None] | None:
    """Called once when a Runtime closes; may return an awaitable; errors are logged, not raised."""
