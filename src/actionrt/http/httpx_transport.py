"""A transport over a caller's `httpx.AsyncClient`: for respx-mocked tests and connectors."""

from __future__ import annotations

import httpx

from actionrt.http.errors import BodyTooLargeError, ConnectError, NetworkError, TooManyRedirectsError
from actionrt.http.headers import check_header_fields
from actionrt.http.redirects import REDIRECT_STATUSES, Hop, follow_redirect, host_of
from actionrt.http.types import DEFAULT_MAX_BODY, MAX_REDIRECTS, HttpRequest, HttpResponse, UrlPolicy


class HttpxTransport:
    """A transport over a caller's `httpx.AsyncClient`: for respx-mocked tests and connectors.

    The client's own TLS settings apply: httpx has no per-request SSL context, so a request's
    `ssl_context` is not supported here (use `Http1Transport` for mutual TLS). httpx does not
    say when a request is written: a request is counted as written once the client has it.
    Proxies are the client's own too (`httpx.AsyncClient(proxy=...)`, its `trust_env`).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: UrlPolicy | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.client = client
        self.policy = policy
        self.max_body = max_body

    async def send(self, request: HttpRequest) -> HttpResponse:
        check_header_fields(request.headers)
        hop = Hop(request.method, request.url, request.headers, request.content)
        client = self.client
        for _ in range(MAX_REDIRECTS + 1):
            try:
                outgoing = client.build_request(hop.method, hop.url, headers=hop.headers, content=hop.content)
                request.written = True
                answer = await client.send(outgoing, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise ConnectError(f"cannot connect to {host_of(hop.url)}") from exc
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise ConnectError(f"invalid URL for {host_of(hop.url)}") from exc
            except httpx.TransportError as exc:
                raise NetworkError(f"connection to {host_of(hop.url)} broke") from exc
            try:
                location = answer.headers.get("location")
                if answer.status_code in REDIRECT_STATUSES and location and request.follow_redirects:
                    hop = follow_redirect(hop, answer.status_code, location, self.policy)
                    continue
                body = await self._read_body(answer)
                return HttpResponse(answer.status_code, answer.headers, body, hop.url)
            except httpx.TransportError as exc:
                raise NetworkError(f"connection to {host_of(hop.url)} broke") from exc
            finally:
                await answer.aclose()
        raise TooManyRedirectsError(f"more than {MAX_REDIRECTS} redirects from {host_of(hop.url)}")

    async def _read_body(self, answer: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLargeError(f"response body exceeds {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.client.aclose()
