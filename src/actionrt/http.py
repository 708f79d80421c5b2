"""The HTTP layer: our own small request/response types and the transports that carry them.

Only this module imports an HTTP client library on the call path; everything else sees
`HttpRequest`, `HttpResponse` and the `TransportError` family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class HttpRequest:
    """One request as actionrt builds it; auth schemes may add headers or query parameters."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass(slots=True)
class HttpResponse:
    """One answer: status, headers (lower-cased names), the body read up to the size cap."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str


class TransportError(Exception):
    """The call did not produce an HTTP answer. `kind` is a short stable word for reports."""

    kind = "network"


class ConnectError(TransportError):
    """The connection could not be made (refused, unreachable, DNS failure, TLS handshake)."""

    kind = "connect"


class NetworkError(TransportError):
    """The connection broke while sending or reading (reset, closed early)."""

    kind = "network"


class BodyTooLargeError(TransportError):
    """The response body is larger than the configured cap."""

    kind = "bodyTooLarge"


class DestinationRefusedError(TransportError):
    """The destination policy refused the host, the address or a redirect target."""

    kind = "destinationRefused"


class TooManyRedirectsError(TransportError):
    """More redirects than allowed."""

    kind = "tooManyRedirects"


class Transport(Protocol):
    """Carries one request and returns its answer, or raises a `TransportError`.

    Redirects are followed by the transport (each target re-checked by the destination
    policy); the body is read up to `max_body` bytes. Time limits are the caller's business:
    the engine cancels a send that outlives the call's deadline.
    """

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...
