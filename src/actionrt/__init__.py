"""actionrt: a plugin-based runtime for journey custom actions."""

from typing import TYPE_CHECKING

from actionrt.errors import (
    ActionrtError,
    EditRefusedError,
    Problem,
    UnknownActionError,
    ValidationError,
)

PLUGIN_API = (1, 0)
"""The plugin API version (major, minor); see actionrt.plugins and docs/plugins/api.md."""

if TYPE_CHECKING:  # the real names for type checkers; loaded lazily at run time (below)
    from actionrt.fleet import Queue
    from actionrt.hookspecs import hookimpl
    from actionrt.results import InvocationResult
    from actionrt.runtime import Runtime

__all__ = [
    "PLUGIN_API",
    "ActionrtError",
    "EditRefusedError",
    "InvocationResult",
    "Problem",
    "Queue",
    "Runtime",
    "UnknownActionError",
    "ValidationError",
    "hookimpl",
]

# The runtime pulls in the HTTP stack, `hookimpl` pluggy: loaded on first use, so
# `import actionrt` (and `actionrt --help`) stays cheap.
_LAZY = {
    "Runtime": "actionrt.runtime",
    "InvocationResult": "actionrt.results",
    "hookimpl": "actionrt.hookspecs",
    "Queue": "actionrt.fleet",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'actionrt' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
