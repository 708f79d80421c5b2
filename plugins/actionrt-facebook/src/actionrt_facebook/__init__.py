"""actionrt-facebook: `facebook.conversions` (Conversions API) and `facebook.messenger` (Send API),
registered through actionrt's hooks (entry point `facebook`)."""

from __future__ import annotations

from collections.abc import Callable

from actionrt import hookimpl
from actionrt.connectors import Connector
from actionrt_facebook.conversions import Conversions, hash_value
from actionrt_facebook.messenger import Messenger

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""
__all__ = ["Conversions", "Messenger", "hash_value", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(Conversions())
    register(Messenger())
