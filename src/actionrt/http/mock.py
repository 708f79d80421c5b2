"""`MockTransport(handler)`: answers from a function, on our own `Transport` interface.

What httpx's MockTransport is to httpx: unit tests of the runtime exercise the real seam
(prepare, auth, retry and results around `Transport.send`) with no network and no patching.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from actionrt.http.errors import TransportError
from actionrt.http.headers import check_header_fields
from actionrt.http.types import HttpRequest, HttpResponse

Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class MockTransport:
    """Hands every request to `handler` (sync or async) and returns its answer.

    The handler may raise a `TransportError` to play a network failure. Header fields are
    checked as a real transport checks them; `requests` keeps what was sent, in order.
    """

    reports_writes = True  # sets `HttpRequest.written` when the request goes out

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        check_header_fields(request.headers)
        self.requests.append(request)
        request.written = True  # the handler is the endpoint: it has the request
        try:
            answer = self.handler(request)
            if inspect.isawaitable(answer):
                return await answer
            return answer
        except TransportError as exc:
            request.written = exc.sent  # a ConnectError played by the handler sent nothing
            raise

    async def aclose(self) -> None:
        return None
