"""Why a call produced no HTTP answer: the `TransportError` family.

ActionrtError
 └── TransportError            no HTTP answer; `kind` is a short stable word for reports
      ├── ConnectError          the connection could not be made (refused, unreachable, TLS)
      │    └── LookupFailedError     the host's name did not resolve
      ├── NetworkError          the connection broke while sending or reading
      ├── BodyTooLargeError     the answer's body is larger than the cap
      ├── DestinationRefusedError   the destination policy refused a host, address or redirect
      ├── ProxyRefusedError     the forward proxy refused the call (407, 403, ...)
      ├── TooManyRedirectsError more redirects than allowed
      └── InvalidRequestError   a header name or value would break the framing

Messages name the host at most, never the path or query (they may hold a key). `sent` says
whether the request was written to the endpoint before the failure (so it may have been acted on).
"""

from __future__ import annotations

from actionrt.errors import ActionrtError


class TransportError(ActionrtError):
    """The call did not produce an HTTP answer. `kind` is a short stable word for reports."""

    kind = "network"
    sent = False


class ConnectError(TransportError):
    """The connection could not be made (refused, unreachable, TLS handshake)."""

    kind = "connect"


class LookupFailedError(ConnectError):
    """The host's name did not resolve: retried like a refused connection, reported apart."""

    kind = "lookupFailed"


class NetworkError(TransportError):
    """The connection broke while sending or reading (reset, closed early, broken framing)."""

    kind = "network"
    sent = True


class BodyTooLargeError(TransportError):
    """The response body is larger than the configured cap."""

    kind = "bodyTooLarge"
    sent = True


class DestinationRefusedError(TransportError):
    """The destination policy refused the host, the address or a redirect target."""

    kind = "destinationRefused"


class ProxyRefusedError(TransportError):
    """The forward proxy refused the call: its credentials (407) or its own policy (403...).
    Final: the same request through the same proxy gets the same answer."""

    kind = "proxyRefused"


class TooManyRedirectsError(TransportError):
    """More redirects than allowed."""

    kind = "tooManyRedirects"
    sent = True


class InvalidRequestError(TransportError):
    """The request cannot be written: a header name or value would break the framing."""

    kind = "invalidRequest"
