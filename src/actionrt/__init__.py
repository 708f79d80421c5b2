"""actionrt: a plugin-based runtime for journey custom actions."""

from actionrt.errors import (
    ActionrtError,
    EditRefusedError,
    Problem,
    UnknownActionError,
    ValidationError,
)
from actionrt.hookspecs import hookimpl

__all__ = [
    "ActionrtError",
    "EditRefusedError",
    "Problem",
    "UnknownActionError",
    "ValidationError",
    "hookimpl",
]
