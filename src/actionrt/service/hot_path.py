"""The invoke route's hot path: `POST /actions/{name}/invoke` served without FastAPI's stack.

The route stays registered with FastAPI (its models and statuses in /openapi.json, and every
answer that is not a result); this path serves the common case without the middleware stack
and the router, which cost more than the call itself (measured in bench/service.py): a request
the security layer admits plainly (`security.admits_plainly`), no query but `async=false`, a
body of known length that validates as `CallBody`, a loaded action. Anything else is handed to
the full application with the body it has read replayed, so refusals and problems come from
one place, word for word. `serve` is the path in front of the ASGI application (any server);
under `actionrt serve`, `protocol.py` takes it one step earlier, on the connection itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic_core import from_json

from actionrt.errors import ActionrtError
from actionrt.jsoncodec import encode_json
from actionrt.observability import last_call_id
from actionrt.service.api import parse_model
from actionrt.service.calls import CallInput, result_payload
from actionrt.service.models import CallBody, within_depth
from actionrt.service.security import (
    Message,
    Receive,
    Scope,
    SecurityPolicy,
    Send,
    admits_plainly,
    json_media,
)
from actionrt.service.state import ServiceState

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
INVOKE_PATH = re.compile(r"/actions/([^/]+)/invoke")
# What a plain invoke's query may be: nothing, or `async=false` as generated clients send it.
SYNC_QUERIES = frozenset({b"", b"async=false", b"async=0"})
BROWSER_HEADERS = frozenset({b"cookie", b"origin", b"sec-fetch-site"})
# A body framed in chunks, or one the client sends only after `100 Continue`: uvicorn's part.
UNPLAIN_HEADERS = frozenset({b"transfer-encoding", b"expect"})
JSON_HEADERS = [(b"content-type", b"application/json")]
# The fields of a call body `plain_call` reads: `CallBody`'s but `timeout` (its bounds are the model's).
PLAIN_FIELDS = frozenset({"params", "headers", "query", "path"})


@dataclass(slots=True)
class PlainInvoke:
    """An invoke the hot path may answer, as its head told: the action's name and the body's
    media type."""

    name: str
    content_type: str


class InvokeHotPath:
    """Serves plain invokes of one service: through ASGI (`serve`, in front of FastAPI's stack)
    or straight from the connection (`protocol.py`, under `actionrt serve`)."""

    def __init__(self, state: ServiceState, policy: SecurityPolicy, max_body: int) -> None:
        self.state = state
        self.policy = policy
        self.max_body = max_body

    def plain(
        self, method: str, path: str, query: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> PlainInvoke | None:
        """The invoke when a request with this head may be served plainly; None when only the
        full application may answer it (another route, a query, a browser, a body of unknown
        length, anything the security layer would decide in full)."""
        if method != "POST":
            return None
        match = INVOKE_PATH.fullmatch(path)
        return None if match is None else self.plain_invoke(match[1], query, headers)

    def plain_invoke(
        self, name: str, query: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> PlainInvoke | None:
        """`plain` of a POST to action `name`'s invoke route."""
        if query and query.lower() not in SYNC_QUERIES:
            return None
        host = authorization = content_type = ""
        length: bytes | None = None
        browser = False
        for key, value in headers:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                length = value
            elif key == b"authorization":
                authorization = value.decode("latin-1")
            elif key in BROWSER_HEADERS:
                browser = True
            elif key in UNPLAIN_HEADERS:
                return None
        if not self.fits(length) or not admits_plainly(
            self.policy, host, authorization, content_type, browser
        ):
            return None
        return PlainInvoke(name, content_type)

    def fits(self, content_length: bytes | None) -> bool:
        """Whether a body of this `content-length` value is one the hot path reads: a length
        given, in digits, at most `max_body`."""
        return (
            content_length is not None and content_length.isdigit() and int(content_length) <= self.max_body
        )

    async def answer(self, invoke: PlainInvoke, body: bytes) -> bytes | None:
        """The call's result as the route's 200 JSON body; None when the body or the action
        is something the route answers with a problem (it is then handed to the application)."""
        calls = self.state.calls
        try:
            call = plain_call(body, invoke.content_type) or _call_input(
                parse_model(body, invoke.content_type, CallBody)
            )
            runtime = calls.loaded(invoke.name)
        except (ActionrtError, RequestValidationError):  # answered by the route, as always
            return None
        result = await calls.invoke_loaded(runtime, invoke.name, call)
        payload = result_payload(result)
        payload["callId"] = last_call_id()
        # The call path's JSON encoder (orjson; the standard library where orjson refuses).
        return encode_json(payload)

    async def serve(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        """Answer a plain invoke's result, or hand the request to `fallback` untouched (its body
        replayed) when this path can't answer it exactly as the route would."""
        invoke = None
        if scope["type"] == "http" and not scope.get("root_path"):
            invoke = self.plain(
                scope["method"], scope["path"], scope.get("query_string", b""), scope["headers"]
            )
        if invoke is None:
            await fallback(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
        content = await self.answer(invoke, body)
        if content is None:
            await fallback(scope, _replay(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})


def plain_call(body: bytes, content_type: str) -> CallInput | None:
    """The call of a JSON body holding only `PLAIN_FIELDS` of the right types, as `parse_model`
    reads it as `CallBody` (pydantic's own JSON parser, no model built); None for any other
    body (`parse_model` decides it). The bench's body: ~13,900 instructions against ~25,700 for
    `parse_model`; an API invoke 143,200 -> 131,100 (callgrind, the call's result cached;
    bench/README.md "The service's API")."""
    if not within_depth(body) or not json_media(content_type):
        return None
    try:
        value = from_json(body)
    except ValueError:
        return None
    if type(value) is not dict or not PLAIN_FIELDS.issuperset(value):
        return None
    params = value.get("params", {})
    headers = value.get("headers", {})
    query = value.get("query", {})
    path = value.get("path")
    if type(params) is not dict or type(headers) is not dict or type(query) is not dict:
        return None
    if path is not None and type(path) is not str:
        return None
    return CallInput(params, headers, query, path)


def _call_input(call: CallBody) -> CallInput:
    return CallInput(call.params, call.headers, call.query, call.path, call.timeout)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read handed out again first."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return again
