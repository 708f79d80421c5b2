"""The hook specifications: how plugins (built-in and third-party) extend actionrt.

Every hook is asked once, when a Runtime starts or a registry loads; never per call. Hooks that
contribute things receive a `register` callback and call it once per thing; the runtime keeps the
objects and calls their methods directly on the call path. Hooks are synchronous (pluggy has no
async support): a hook that needs async work returns an awaitable (`actionrt_startup`) or an object
whose methods are async. No hook here is `firstresult`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from actionrt.auth.base import AuthScheme
    from actionrt.connectors import Connector
    from actionrt.events import EventSink
    from actionrt.secrets import SecretProvider

PROJECT = "actionrt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- asked when a Runtime (or a Registry) loads: what plugins contribute ----------------------


@hookspec
def register_auth_schemes(register: Callable[[AuthScheme], None]) -> None:
    """Register authentication schemes, each under its `type` name."""


@hookspec
def register_connectors(register: Callable[[Connector], None]) -> None:
    """Register connectors: named bundles of action templates and API-specific code."""


@hookspec
def register_expression_functions(
    register: Callable[[str, Callable[..., Any]], None],
    register_filter: Callable[[str, Callable[..., Any]], None],
) -> None:
    """Register functions and filters usable in journey mapping expressions, by name."""


@hookspec
def register_secret_providers(register: Callable[[SecretProvider], None]) -> None:
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
