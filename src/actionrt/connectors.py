"""The connector interface: a named bundle of action templates plus API-specific code."""

from __future__ import annotations

from typing import Any, Protocol

from actionrt.http import HttpRequest, HttpResponse


class Connector(Protocol):
    """A connector turns `connector: <name>` + its settings into a plain action definition.

    `expand` runs at load time; the dict it returns is validated exactly like a hand-written
    action file. `shape_request` and `classify_response` are optional call-path hooks for APIs
    that need code (hashing, signing, reading their own error bodies); they are plain methods,
    looked up once per action.
    """

    name: str

    def expand(self, action: dict[str, Any]) -> dict[str, Any]:
        """Return the action file dict with the connector's endpoint, auth and payload filled in."""
        ...


class RequestShaper(Protocol):
    def shape_request(self, request: HttpRequest, params: dict[str, Any]) -> None: ...


class ResponseClassifier(Protocol):
    def classify_response(self, response: HttpResponse) -> bool | None:
        """True: retry; False: do not retry; None: use the default policy."""
        ...
