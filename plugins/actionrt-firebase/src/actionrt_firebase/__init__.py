"""actionrt-firebase: the `firebase.fcm` connector (FCM HTTP v1) and the `googleServiceAccount`
authentication scheme it needs, registered through actionrt's hooks (entry point `firebase`)."""

from __future__ import annotations

from collections.abc import Callable

from actionrt import hookimpl
from actionrt.auth.base import AuthScheme
from actionrt.connectors import Connector
from actionrt_firebase.fcm import Fcm, fcm_error_code
from actionrt_firebase.service_account import SCHEME, signed_assertion

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""
__all__ = ["Fcm", "fcm_error_code", "register_auth_schemes", "register_connectors", "signed_assertion"]


@hookimpl
def register_auth_schemes(register: Callable[[AuthScheme], None]) -> None:
    register(SCHEME)


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(Fcm())
