"""The HTTP layer: our own small request/response types and the transports that carry them.

Only this package speaks HTTP on the call path; everything else sees `HttpRequest`,
`HttpResponse` and the `TransportError` family. Its parts:

- `types`: `HttpRequest`, `HttpResponse`, the `Transport` seam, defaults
- `errors`: the `TransportError` family (drawn in its docstring)
- `headers`: header fields checked before anything is sent
- `redirects`: which method, body and headers a redirect carries
- `protocol`: one HTTP/1.1 connection, answers parsed by httptools (llhttp)
- `pool`: connections pooled per host, each host with its own limit and waiting line
- `proxy`: which forward proxy carries a call (`HTTPS_PROXY`...), CONNECT tunnels
- `http1`: `Http1Transport`, the default
- `aiohttp_transport`, `httpx_transport`: the same seam over aiohttp and httpx
- `mock`: `MockTransport(handler)` for unit tests
"""

from actionrt.http.aiohttp_transport import AiohttpTransport, PolicyResolver
from actionrt.http.errors import (
    BodyTooLargeError,
    ConnectError,
    DestinationRefusedError,
    InvalidRequestError,
    LookupFailedError,
    NetworkError,
    ProxyRefusedError,
    TooManyRedirectsError,
    TransportError,
)
from actionrt.http.headers import check_header_fields
from actionrt.http.http1 import Http1Transport
from actionrt.http.httpx_transport import HttpxTransport
from actionrt.http.mock import MockTransport
from actionrt.http.pool import PoolLimits
from actionrt.http.proxy import PROXY_ENV, Proxy, ProxyRules, proxy_rules
from actionrt.http.redirects import CROSS_ORIGIN_HEADERS, REDIRECT_STATUSES, follow_redirect
from actionrt.http.types import (
    CA_BUNDLE_ENV,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_BODY,
    DEFAULT_TOTAL_CONNECTION_LIMIT,
    MAX_REDIRECTS,
    DestinationCheck,
    HttpRequest,
    HttpResponse,
    Transport,
    UrlPolicy,
    default_ssl_context,
    trust_ca_bundle,
)

__all__ = [
    "CA_BUNDLE_ENV",
    "CROSS_ORIGIN_HEADERS",
    "DEFAULT_CONNECTION_LIMIT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_TOTAL_CONNECTION_LIMIT",
    "MAX_REDIRECTS",
    "PROXY_ENV",
    "REDIRECT_STATUSES",
    "AiohttpTransport",
    "BodyTooLargeError",
    "ConnectError",
    "DestinationCheck",
    "DestinationRefusedError",
    "Http1Transport",
    "HttpRequest",
    "HttpResponse",
    "HttpxTransport",
    "InvalidRequestError",
    "LookupFailedError",
    "MockTransport",
    "NetworkError",
    "PolicyResolver",
    "PoolLimits",
    "Proxy",
    "ProxyRefusedError",
    "ProxyRules",
    "TooManyRedirectsError",
    "Transport",
    "TransportError",
    "UrlPolicy",
    "check_header_fields",
    "default_ssl_context",
    "follow_redirect",
    "proxy_rules",
    "trust_ca_bundle",
]
