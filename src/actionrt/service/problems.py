"""Error answers as RFC 9457 problem details (`application/problem+json`): one model for every
route, with each wrong field in `problems: [{path, message}]`. The exception handlers here turn
the domain's exceptions, FastAPI's request validation and Starlette's HTTP errors into it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from actionrt.definition import _loc
from actionrt.errors import ActionrtError, EditRefusedError, Problem, ValidationError
from actionrt.service.catalog import NameTakenError, NotFoundError
from actionrt.service.rules import RuleStateError

PROBLEM_JSON = "application/problem+json"
# Request parts FastAPI names first in an error's location; the field path starts after them.
_LOCATIONS = ("body", "query", "path", "header")


class BodyError(ActionrtError):
    """A request body that can't be read (400) or is not JSON (415)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class FleetRequiredError(ActionrtError):
    """A fleet request (async invoke, a queued call's result) to a service without --redis (409:
    the request is right, the service's setup can't serve it)."""


class StaleWriteError(ActionrtError):
    """An `If-Match` that names another version than the stored one (412)."""


def problem_response(
    status: int,
    detail: str | None = None,
    problems: Iterable[Problem] = (),
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "problems": [{"path": p.path, "message": p.message} for p in problems],
        **extensions,
    }
    return Response(json.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def request_problems(errors: Sequence[Any]) -> list[Problem]:
    """FastAPI's validation errors with the field paths the rest of the API uses."""
    problems = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem("", _loc(loc), message))
    return problems


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods of the path as routed: every route with the path pattern of the first route
    that matches it (Starlette's own 405 names only that one route's methods)."""
    pattern: str | None = None
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "\x00"})
        if match is not Match.PARTIAL:
            continue
        path = getattr(route, "path", None)
        if pattern is None:
            pattern = path
        if path == pattern:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that answer every error as problem details."""

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(422, "invalid input", request_problems(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        # Starlette's own "Allow" names one route's methods: replaced, never sent beside ours.
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
        if exc.status_code == 405:
            headers["allow"] = ", ".join(allowed_methods(app, request.scope))
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, detail, headers=headers)

    async def body_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyError)
        return problem_response(exc.status, str(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem_response(404, str(exc.args[0]) if exc.args else "not found")

    async def name_taken(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NameTakenError)
        return problem_response(409, "the name is taken", exc.problems)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        return problem_response(422, "invalid input", exc.problems)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EditRefusedError)
        return problem_response(
            409,
            str(exc),
            action=exc.action,
            refused=[{"field": r.field, "journeys": list(r.journeys)} for r in exc.refused],
        )

    async def conflict(request: Request, exc: Exception) -> Response:
        return problem_response(409, str(exc))

    async def stale(request: Request, exc: Exception) -> Response:
        return problem_response(412, str(exc))

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(BodyError, body_error)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(NameTakenError, name_taken)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(EditRefusedError, refused)
    app.add_exception_handler(RuleStateError, conflict)
    app.add_exception_handler(StaleWriteError, stale)

    async def no_fleet(request: Request, exc: Exception) -> Response:
        return problem_response(409, str(exc))

    app.add_exception_handler(FleetRequiredError, no_fleet)


def install_fleet(app: FastAPI) -> None:
    """The fleet's refusal (`serve --redis`): its Redis unreachable is a 503 problem. Imported
    here, not above: the fleet's modules need the `redis` extra."""
    from actionrt.fleet.engine import QueueUnavailableError

    async def unavailable(request: Request, exc: Exception) -> Response:
        return problem_response(503, str(exc), headers={"retry-after": "5"})

    app.add_exception_handler(QueueUnavailableError, unavailable)
