"""The JSON API: actions, journeys, calls (invoke, test request, authentication check), payload
field inference, capping and throttling rules. Every route is described in `openapi.py`.

Errors: 400 unreadable body, 404 unknown name, 409 refused edit or name taken, 415 body that is
not JSON, 422 invalid input with the wrong field paths. A failed request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from actionrt.definition import action_json_schema, pydantic_problems
from actionrt.errors import ActionrtError, EditRefusedError, Problem, ValidationError
from actionrt.observability import last_call_id
from actionrt.payload import FieldSpec, FieldType, infer_fields, resolve_variable
from actionrt.service.calls import CallInput, result_payload
from actionrt.service.catalog import NameTakenError, NotFoundError, refused_payload
from actionrt.service.rules import RuleKind, RuleStateError, rule_payload
from actionrt.service.state import ServiceState, journey_summary

Endpoint = Callable[[Request], Awaitable[Response]]
ModelT = TypeVar("ModelT", bound=BaseModel)


class BodyError(ActionrtError):
    """A request body that can't be read as JSON."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def problems_payload(problems: list[Problem]) -> dict[str, Any]:
    return {
        "error": "invalid input",
        "problems": [{"path": p.path, "message": p.message} for p in problems],
    }


def api_errors(handler: Endpoint) -> Endpoint:
    """Turn the domain's exceptions into the API's error answers."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BodyError as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        except NotFoundError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except NameTakenError as exc:
            return JSONResponse(problems_payload(exc.problems), 409)
        except ValidationError as exc:
            return JSONResponse(problems_payload(exc.problems), 422)
        except EditRefusedError as exc:
            return JSONResponse(refused_payload(exc), 409)
        except RuleStateError as exc:
            return JSONResponse({"error": str(exc)}, 409)

    return wrapped


async def read_json(request: Request, *, default: Any = None) -> Any:
    """The request body as JSON; an empty body is `default`."""
    body = await request.body()
    if not body.strip():
        if default is None:
            raise BodyError(400, "a JSON body is required")
        return default
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise BodyError(415, "send the body as application/json")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"the body is not valid JSON: {exc}") from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallBody(_Body):
    """The values of one call (invoke, Send test request)."""

    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    timeout: float | None = Field(default=None, ge=1, le=30)

    def call(self) -> CallInput:
        return CallInput(self.params, self.headers, self.query, self.path, self.timeout)


class TestBody(CallBody):
    """Send test request: the call's values and the credentials re-entered for it."""

    credentials: dict[str, str] = Field(default_factory=dict)


class CredentialsBody(_Body):
    credentials: dict[str, str] = Field(default_factory=dict)


class DuplicateBody(_Body):
    name: str | None = None


class SampleBody(_Body):
    sample: Any


def parse_body(model: type[ModelT], raw: Any) -> ModelT:
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ValidationError(pydantic_problems(exc, "")) from None


class Api:
    """The API's routes, bound to one service."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        r = api_errors
        return [
            Route("/actions", r(self.list_actions), methods=["GET"]),
            Route("/actions", r(self.create_action), methods=["POST"]),
            Route("/actions/validate", r(self.validate_action), methods=["POST"]),
            Route("/actions/{name}", r(self.get_action), methods=["GET"]),
            Route("/actions/{name}", r(self.update_action), methods=["PUT"]),
            Route("/actions/{name}", r(self.delete_action), methods=["DELETE"]),
            Route("/actions/{name}/duplicate", r(self.duplicate_action), methods=["POST"]),
            Route("/actions/{name}/journeys", r(self.action_journeys), methods=["GET"]),
            Route("/actions/{name}/invoke", r(self.invoke), methods=["POST"]),
            Route("/actions/{name}/test", r(self.test_request), methods=["POST"]),
            Route("/actions/{name}/check-authentication", r(self.check_authentication), methods=["POST"]),
            Route("/actions/{name}/calls", r(self.recent_calls), methods=["GET"]),
            Route("/journeys", r(self.list_journeys), methods=["GET"]),
            Route("/journeys", r(self.create_journey), methods=["POST"]),
            Route("/journeys/{id}", r(self.get_journey), methods=["GET"]),
            Route("/payload/fields", r(self.payload_fields), methods=["POST"]),
            Route("/limits/rules", r(self.list_rules), methods=["GET"]),
            Route("/limits/capping", r(self.create_capping), methods=["POST"]),
            Route("/limits/throttling", r(self.create_throttling), methods=["POST"]),
            Route("/limits/rules/{uid}", r(self.get_rule), methods=["GET"]),
            Route("/limits/rules/{uid}", r(self.delete_rule), methods=["DELETE"]),
            Route("/limits/rules/{uid}/deploy", r(self.deploy_rule), methods=["POST"]),
            Route("/limits/rules/{uid}/undeploy", r(self.undeploy_rule), methods=["POST"]),
            Route("/schema/action", r(self.action_schema), methods=["GET"]),
            Route("/healthz", r(self.health), methods=["GET"]),
        ]

    # -- actions -------------------------------------------------------------------------------

    async def list_actions(self, request: Request) -> Response:
        actions = sorted(self.state.catalog.registry.actions.values(), key=lambda a: a.name.lower())
        return JSONResponse({"actions": [self.state.summary(a) for a in actions]})

    async def create_action(self, request: Request) -> Response:
        action = self.state.catalog.create(await read_json(request))
        return JSONResponse(self.state.detail(action), 201, headers={"location": f"/actions/{action.name}"})

    async def validate_action(self, request: Request) -> Response:
        replacing = request.query_params.get("replacing") or None
        self.state.catalog.validate(await read_json(request), replacing=replacing)
        return JSONResponse({"ok": True, "problems": []})

    async def get_action(self, request: Request) -> Response:
        action = self.state.catalog.action(request.path_params["name"])
        return JSONResponse(self.state.detail(action))

    async def update_action(self, request: Request) -> Response:
        action = self.state.catalog.update(request.path_params["name"], await read_json(request))
        return JSONResponse(self.state.detail(action))

    async def delete_action(self, request: Request) -> Response:
        self.state.catalog.delete(request.path_params["name"])
        return Response(status_code=204)

    async def duplicate_action(self, request: Request) -> Response:
        body = parse_body(DuplicateBody, await read_json(request, default={}))
        action = self.state.catalog.duplicate(request.path_params["name"], body.name)
        return JSONResponse(self.state.detail(action), 201, headers={"location": f"/actions/{action.name}"})

    async def action_journeys(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.state.catalog.action(name)
        users = self.state.catalog.registry.used_in(name)
        return JSONResponse(
            {"journeys": [journey_summary(j.id, j.definition.name, j.definition.status) for j in users]}
        )

    # -- calls ---------------------------------------------------------------------------------

    async def invoke(self, request: Request) -> Response:
        body = parse_body(CallBody, await read_json(request, default={}))
        result = await self.state.calls.invoke(request.path_params["name"], body.call())
        return JSONResponse({**result_payload(result), "callId": last_call_id()})

    async def test_request(self, request: Request) -> Response:
        body = parse_body(TestBody, await read_json(request, default={}))
        result, structure = await self.state.calls.test(
            request.path_params["name"], body.call(), body.credentials
        )
        payload = {**result_payload(result), "callId": last_call_id()}
        payload["structure"] = {
            "ok": result.ok and not structure,
            "problems": [{"path": p.path, "message": p.message} for p in structure],
        }
        return JSONResponse(payload)

    async def check_authentication(self, request: Request) -> Response:
        body = parse_body(CredentialsBody, await read_json(request, default={}))
        check = await self.state.calls.check_authentication(request.path_params["name"], body.credentials)
        return JSONResponse({"ok": check.ok, "message": check.message})

    async def recent_calls(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.state.catalog.action(name)
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", "50"))))
        except ValueError:
            raise ValidationError.single("", "limit", "must be an integer") from None
        store = self.state.store
        calls = [
            {
                "at": row.at,
                "kind": row.kind,
                "status": row.status,
                "ok": row.ok,
                "httpStatus": row.http_status,
                "attempts": row.attempts,
                "elapsed": round(row.elapsed, 6),
                "error": row.error,
            }
            for row in store.recent_calls(name, limit)
        ]
        return JSONResponse({"action": name, "counts": store.call_counts(name), "calls": calls})

    # -- journeys ------------------------------------------------------------------------------

    async def list_journeys(self, request: Request) -> Response:
        journeys = sorted(self.state.catalog.registry.journeys.values(), key=lambda j: j.id)
        return JSONResponse(
            {
                "journeys": [
                    {
                        **journey_summary(j.id, j.definition.name, j.definition.status),
                        "actions": j.definition.actions,
                    }
                    for j in journeys
                ]
            }
        )

    async def create_journey(self, request: Request) -> Response:
        journey = self.state.catalog.add_journey(await read_json(request))
        return JSONResponse(
            {"journey": journey.definition.model_dump(mode="json")},
            201,
            headers={"location": f"/journeys/{journey.id}"},
        )

    async def get_journey(self, request: Request) -> Response:
        journey = self.state.catalog.journey(request.path_params["id"])
        return JSONResponse({"journey": journey.definition.model_dump(mode="json")})

    # -- payload -------------------------------------------------------------------------------

    async def payload_fields(self, request: Request) -> Response:
        body = parse_body(SampleBody, await read_json(request))
        root, problems = infer_fields(body.sample, source="", where="sample")
        if problems:
            raise ValidationError(problems)
        return JSONResponse({"fields": field_rows(root)})

    # -- limits --------------------------------------------------------------------------------

    async def list_rules(self, request: Request) -> Response:
        kind = request.query_params.get("kind")
        if kind not in (None, "capping", "throttling"):
            raise ValidationError.single("", "kind", "must be capping or throttling")
        chosen: RuleKind | None = "capping" if kind == "capping" else "throttling" if kind else None
        return JSONResponse({"rules": [rule_payload(row) for row in self.state.rules.list(chosen)]})

    async def create_capping(self, request: Request) -> Response:
        return await self._create_rule("capping", request)

    async def create_throttling(self, request: Request) -> Response:
        return await self._create_rule("throttling", request)

    async def _create_rule(self, kind: RuleKind, request: Request) -> Response:
        row, created = self.state.rules.create(kind, await read_json(request))
        return JSONResponse(rule_payload(row), 201 if created else 200)

    def _rule_uid(self, request: Request) -> str:
        uid: str = request.path_params["uid"]
        try:
            self.state.rules.get(uid)
        except KeyError:
            raise NotFoundError(f"no rule with uid {uid!r}") from None
        return uid

    async def get_rule(self, request: Request) -> Response:
        return JSONResponse(rule_payload(self.state.rules.get(self._rule_uid(request))))

    async def deploy_rule(self, request: Request) -> Response:
        return JSONResponse(rule_payload(self.state.rules.deploy(self._rule_uid(request))))

    async def undeploy_rule(self, request: Request) -> Response:
        return JSONResponse(rule_payload(self.state.rules.undeploy(self._rule_uid(request))))

    async def delete_rule(self, request: Request) -> Response:
        self.state.rules.delete(self._rule_uid(request))
        return Response(status_code=204)

    # -- meta ----------------------------------------------------------------------------------

    async def action_schema(self, request: Request) -> Response:
        return JSONResponse(action_json_schema())

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "actions": len(self.state.catalog.registry.actions)})


def field_rows(root: FieldSpec) -> list[dict[str, Any]]:
    """The message-parameter table: one row per field below the root, depth first."""
    rows = []
    for spec in root.walk():
        if not spec.path:
            continue
        reason = _why_not_variable(root, spec)
        rows.append(
            {
                "path": spec.path,
                "name": spec.name,
                "depth": spec.path.count("."),
                "type": spec.type.value,
                "sample": None if spec.type in (FieldType.OBJECT, FieldType.LIST_OBJECT) else spec.sample,
                "container": spec.type in (FieldType.OBJECT, FieldType.LIST_OBJECT),
                "canBeVariable": reason is None,
                "whyConstant": reason,
            }
        )
    return rows


def _why_not_variable(root: FieldSpec, spec: FieldSpec) -> str | None:
    resolved = resolve_variable(root, spec.path, label="x", optional=False, declared=None)
    return resolved if isinstance(resolved, str) else None
