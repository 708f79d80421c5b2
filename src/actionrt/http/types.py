"""Our own small request/response types, the `Transport` seam and the transport defaults."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

DEFAULT_MAX_BODY = 1 << 20
"""Response bodies larger than this (bytes) end the call with `BodyTooLargeError`."""

MAX_REDIRECTS = 5
DEFAULT_CONNECTION_LIMIT = 400
"""Open connections per host; the reference caps `maxHttpConnections` at 400 too."""
DEFAULT_TOTAL_CONNECTION_LIMIT = 4000
"""Open connections per transport, all hosts together (file descriptors are finite)."""


@dataclass(slots=True)
class HttpRequest:
    """One request as actionrt builds it; auth schemes may add headers or query parameters.

    `ssl_context` carries per-action TLS settings (a client certificate for mutual TLS);
    None means the transport's default context (verified, TLS 1.2 or later).

    The transport reports progress on the request itself: `written` turns True when its bytes
    go to the endpoint (so it may have been acted on), and `waiting_for` says what a send is
    waiting for before that ("no connection free to api.example.com (400 in use)"), or None.
    `follow_redirects=False` returns a redirect answer as it is (token calls want the token).
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    ssl_context: ssl.SSLContext | None = None
    written: bool = False
    waiting_for: str | None = None
    follow_redirects: bool = True


@dataclass(slots=True)
class HttpResponse:
    """One answer: status, headers, the body read up to the size cap.

    `headers` is case-insensitive (look names up in lower case); `url` is the final URL after
    redirects.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str


class Transport(Protocol):
    """Carries one request and returns its answer, or raises a `TransportError`.

    Redirects are followed by the transport (each target re-checked by the destination
    policy); the body is read up to `max_body` bytes. Time limits are the caller's business:
    the engine cancels a send that outlives the call's deadline.

    A transport with `reports_writes = True` sets `HttpRequest.written` when the request goes
    out; the engine then counts only written requests as attempts. Without it, every request
    handed to the transport counts (it may have been sent).
    """

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class UrlPolicy(Protocol):
    """The part of `actionrt.guard.DestinationPolicy` a transport needs for redirects."""

    def check_url(self, url: str) -> None:
        """Raise `DestinationRefusedError` when `url` may not be called."""


class DestinationCheck(UrlPolicy, Protocol):
    """What a transport that resolves names itself needs of `actionrt.guard.DestinationPolicy`."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses of `host`; raises `DestinationRefusedError` when none is."""
        ...


CA_BUNDLE_ENV = "ACTIONRT_CA_BUNDLE"
"""A PEM file of CA certificates trusted in addition to the system's (a private CA)."""


def default_ssl_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """Verified TLS, 1.3 preferred with fallback to 1.2 (reference §2), trusting the system's
    CAs plus those of `ca_bundle` (default: the file `ACTIONRT_CA_BUNDLE` names, if set)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    trust_ca_bundle(context, ca_bundle)
    return context


def trust_ca_bundle(context: ssl.SSLContext, ca_bundle: str | Path | None = None) -> None:
    """Add the CAs of `ca_bundle` (or of `ACTIONRT_CA_BUNDLE`) to `context`'s trust store;
    ValueError naming the file when it is not a readable PEM bundle."""
    bundle = ca_bundle or os.environ.get(CA_BUNDLE_ENV) or None
    if bundle is None:
        return
    try:
        context.load_verify_locations(cafile=str(bundle))
    except (OSError, ssl.SSLError) as exc:
        origin = "" if ca_bundle else f" ({CA_BUNDLE_ENV})"
        reason = "not a PEM CA bundle" if isinstance(exc, ssl.SSLError) else exc.strerror or str(exc)
        raise ValueError(f"CA bundle {bundle}{origin}: {reason}") from None
