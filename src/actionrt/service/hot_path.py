"""The invoke route's hot path: `POST /actions/{name}/invoke` served straight from ASGI.

The route stays registered with FastAPI (its models and statuses in /openapi.json, and every
answer that is not a result); this path serves the common case without the middleware stack
and the router, which cost more than the call itself (measured in bench/service.py): a request
the security layer admits plainly (`security.admits_plainly`), no query but `async=false`, a
body of known length that validates as `CallBody`, a loaded action. Anything else is handed to
the full application with the body it has read replayed, so refusals and problems come from
one place, word for word.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import RequestValidationError

from actionrt.errors import ActionrtError
from actionrt.jsoncodec import encode_json
from actionrt.observability import last_call_id
from actionrt.service.api import parse_model
from actionrt.service.calls import CallInput, result_payload
from actionrt.service.models import CallBody
from actionrt.service.security import Message, Receive, Scope, SecurityPolicy, Send, admits_plainly
from actionrt.service.state import ServiceState

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
INVOKE_PATH = re.compile(r"/actions/([^/]+)/invoke")
# What a plain invoke's query may be: nothing, or `async=false` as generated clients send it.
SYNC_QUERIES = frozenset({b"", b"async=false", b"async=0"})
BROWSER_HEADERS = frozenset({b"cookie", b"origin", b"sec-fetch-site"})
JSON_HEADERS = [(b"content-type", b"application/json")]


class InvokeHotPath:
    """Serves plain invokes of one service; `serve` hands every other request to `fallback`."""

    def __init__(self, state: ServiceState, policy: SecurityPolicy, max_body: int) -> None:
        self.state = state
        self.policy = policy
        self.max_body = max_body

    def takes(self, scope: Scope) -> re.Match[str] | None:
        """The path's match when `scope` may be an invoke this path serves."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        if scope.get("query_string", b"").lower() not in SYNC_QUERIES:
            return None
        if scope.get("root_path"):
            return None
        return INVOKE_PATH.fullmatch(scope["path"])

    async def serve(self, name: str, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        """Invoke `name` and answer its result, or hand the request to `fallback` untouched
        (its body replayed) when this path can't answer it exactly as the route would."""
        host = authorization = content_type = ""
        length = -1
        browser = False
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif key == b"authorization":
                authorization = value.decode("latin-1")
            elif key in BROWSER_HEADERS:
                browser = True
        if not 0 <= length <= self.max_body or not admits_plainly(
            self.policy, host, authorization, content_type, browser
        ):
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
        calls = self.state.calls
        try:
            call = parse_model(body, content_type, CallBody)
            runtime = calls.loaded(name)
        except (ActionrtError, RequestValidationError):  # answered by the route, as always
            await fallback(scope, _replay(body, receive), send)
            return
        result = await calls.invoke_loaded(
            runtime, name, CallInput(call.params, call.headers, call.query, call.path, call.timeout)
        )
        # The call path's JSON encoder (orjson; the standard library where orjson refuses).
        content = encode_json({**result_payload(result), "callId": last_call_id()})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})


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
