"""The JSON API: actions, journeys, calls (invoke, test request, authentication check), payload
field inference, capping and throttling rules. Each route declares its request and response
models and every status it answers; `/openapi.json` is generated from them.

Errors are problem details (`problems.py`): 400 unreadable body, 404 unknown name, 409 refused
edit or name taken, 412 stale `If-Match`, 415 body that is not JSON, 422 invalid input with the
wrong field paths. A failed request changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import pydantic
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from actionrt.definition import ActionDefinition
from actionrt.errors import ValidationError
from actionrt.expressions import ExpressionError
from actionrt.journeys import Mappings
from actionrt.limits.rules import CappingRule, ThrottlingRule
from actionrt.observability import last_call_id
from actionrt.payload import FieldSpec, FieldType, infer_fields, resolve_variable
from actionrt.service.calls import CallInput, result_payload
from actionrt.service.catalog import NotFoundError
from actionrt.service.models import (
    DEPTH_CHECKED,
    MAX_DEPTH,
    ActionDetail,
    ActionList,
    AuthCheckOut,
    CallAccepted,
    CallBody,
    CallPending,
    CallResult,
    CredentialsBody,
    DuplicateBody,
    FieldRows,
    Health,
    JourneyBody,
    JourneyList,
    JourneyOut,
    JourneyUsers,
    ProblemDetails,
    RecentCalls,
    RuleList,
    RuleOut,
    SampleBody,
    TestBody,
    TestResult,
    ValidationOk,
    too_deep,
    within_depth,
)
from actionrt.service.problems import BodyError, FleetRequiredError, StaleWriteError
from actionrt.service.rules import RuleKind, rule_payload
from actionrt.service.security import json_media
from actionrt.service.state import ServiceState, journey_summary

if TYPE_CHECKING:  # the fleet's modules need the `redis` extra: imported when used
    from actionrt.fleet.queue import Queue

# Schemas of the documents the domain validates itself (its messages, connectors, plugins):
# named in the document's components, generated from the models that check them.
ModelT = TypeVar("ModelT", bound=BaseModel)

DOCUMENT_MODELS: dict[str, type[BaseModel]] = {
    "ActionDocument": ActionDefinition,
    "CappingRule": CappingRule,
    "ThrottlingRule": ThrottlingRule,
    "CallBody": CallBody,
}

ERRORS = {
    400: "The body is not valid JSON, or nested too deep",
    404: "No such action, journey or rule",
    409: "Refused: fields a live journey pins, a name already taken, an action or journey in use",
    412: "If-Match names another version: reload and retry",
    413: "The body is larger than 1 MiB",
    415: "The body is not application/json",
    422: "Invalid input: every wrong field path with its message",
    503: "The fleet's Redis is unreachable",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route declares (problem details; `app.py` sets the media type)."""
    return {status: {"description": ERRORS[status], "model": ProblemDetails} for status in statuses}


def document_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` of a route whose body is read by the route (the domain validates it):
    the body's schema by its name in the components."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


BODY_ERRORS = (400, 413, 415, 422)
CALL_ID = r"^[A-Za-z0-9_-]{1,64}$"
MAX_WAIT = 30  # seconds GET /calls/{callId} may hold a request waiting for a result
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="async=true: the same key names the same call, made at most once",
    ),
]
SAME_RULE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The same rule exists already", "model": RuleOut}
}
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the ETag of the version this change replaces",
        pattern=r'^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$',
    ),
]


async def read_json(request: Request, *, default: Any = None) -> Any:
    """The request body as JSON; an empty body is `default` (required when None)."""
    body = await request.body()
    if not body.strip():
        if default is None:
            raise BodyError(400, "a JSON body is required")
        return default
    if not json_media(request.headers.get("content-type", "")):
        raise BodyError(415, "send the body as application/json")
    try:
        value = json.loads(body)
    except RecursionError:
        raise BodyError(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"the body is not valid JSON: {exc}") from None
    check_depth(value)
    return value


async def read_model(request: Request, model: type[ModelT]) -> ModelT:
    """The body validated as `model` straight from its bytes (an empty body: the defaults)."""
    return parse_model(await request.body(), request.headers.get("content-type", ""), model)


def parse_model(body: bytes, content_type: str, model: type[ModelT]) -> ModelT:
    """`body` validated as `model` (an empty body: the defaults); BodyError (400, 415) or
    RequestValidationError (422) naming what is wrong and where. A body `within_depth` needs
    no walk by the models' depth validators (`DEPTH_CHECKED`)."""
    if not body.strip():
        return model()
    if not json_media(content_type):
        raise BodyError(415, "send the body as application/json")
    try:
        return model.model_validate_json(body, context=DEPTH_CHECKED if within_depth(body) else None)
    except pydantic.ValidationError as exc:
        if any(e["type"] in ("json_invalid", "recursion_loop") for e in exc.errors()):
            raise BodyError(400, "the body is not valid JSON, or nested too deep") from None
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def model_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` of a route that reads its body with `read_model`."""
    return document_body(model.__name__, required=required)


def check_depth(value: Any) -> None:
    """Refuse (400, naming where) a body nested deeper than MAX_DEPTH."""
    where = too_deep(value)
    if where is not None:
        raise BodyError(400, f"the body is nested deeper than {MAX_DEPTH} levels at {where or 'the root'}")


def etag(document: Any) -> str:
    """A strong ETag of a stored document (its canonical JSON)."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:20]}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """StaleWriteError unless `If-Match` is absent, `*` or lists the current ETag (strong
    comparison: weak tags never match, RFC 9110 §13.1.1)."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags or current in tags:
        return
    raise StaleWriteError(f"If-Match {if_match!r} is not the current version {current}")


def links(created: str, parameter: str, pointer: str, *operations: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a created resource's answer to the operations on it (clients and
    schemathesis' stateful phase follow them)."""
    value = f"$response.body#{pointer}"
    return {
        int(created): {
            "links": {
                operation: {"operationId": operation, "parameters": {parameter: value}}
                for operation in operations
            }
        }
    }


ACTION_LINKS = links(
    "201",
    "name",
    "/action/name",
    "get_action",
    "update_action",
    "delete_action",
    "duplicate_action",
    "action_journeys",
    "invoke",
    "test_request",
    "check_authentication",
    "recent_calls",
)
JOURNEY_LINKS = links(
    "201",
    "id",
    "/journey/id",
    "get_journey",
    "update_journey",
    "publish_journey",
    "stop_journey",
    "delete_journey",
)
ACCEPTED_LINKS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued (async=true): the result is at GET /calls/{callId}", "model": CallAccepted}
    | links("202", "callId", "/callId", "get_call")[202]
}
NO_FLEET: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "async=true, or a queued call's result, on a service without --redis",
        "model": ProblemDetails,
    }
}
RULE_LINKS = links("201", "uid", "/uid", "get_rule", "deploy_rule", "undeploy_rule", "delete_rule")


class MappingPreviewBody(BaseModel):
    """A node's mappings and the sample journey data to evaluate them against."""

    model_config = {"extra": "forbid"}
    mappings: Mappings
    profile: dict[str, Any] = {}
    event: dict[str, Any] = {}
    actions: dict[str, Any] = {}


class MappingPreview(BaseModel):
    """Each mapping's value by group and key, or its error message."""

    values: dict[str, dict[str, Any]]
    errors: dict[str, dict[str, str]]


def build_router(state: ServiceState) -> APIRouter:
    """The API's routes, bound to one service."""
    # Operation ids are the handlers' names (`invoke`, `update_action`): what a generated client
    # names its functions.
    router = APIRouter(generate_unique_id_function=lambda route: route.name)
    catalog = state.catalog

    def detail_response(name: str, status: int = 200, **headers: str) -> Response:
        action = catalog.action(name)
        detail = state.detail(action)
        return JSONResponse(detail, status, headers={"etag": etag(detail["action"]), **headers})

    # -- actions -------------------------------------------------------------------------------

    @router.get("/actions", response_model=ActionList, tags=["actions"])
    async def list_actions() -> Response:
        """The actions: name, description, method, host, url, authentication, `usedIn`, `live`."""
        actions = sorted(catalog.registry.actions.values(), key=lambda a: a.name.lower())
        return JSONResponse({"actions": [state.summary(a) for a in actions]})

    @router.post(
        "/actions",
        status_code=201,
        response_model=ActionDetail,
        responses=ACTION_LINKS | errors(*BODY_ERRORS, 409),
        openapi_extra=document_body("ActionDocument"),
        tags=["actions"],
    )
    async def create_action(request: Request) -> Response:
        """Create an action; literal secrets are sealed."""
        action = catalog.create(await read_json(request))
        return detail_response(action.name, 201, location=f"/actions/{action.name}")

    @router.post(
        "/actions/validate",
        response_model=ValidationOk,
        responses=errors(*BODY_ERRORS, 404, 409),
        openapi_extra=document_body("ActionDocument"),
        tags=["actions"],
    )
    async def validate_action(
        request: Request,
        replacing: Annotated[str | None, Query(description="check as an update of this action")] = None,
    ) -> Response:
        """Check an action as create (or update of `replacing`) would, saving nothing."""
        catalog.validate(await read_json(request), replacing=replacing or None)
        return JSONResponse({"ok": True, "problems": []})

    @router.get("/actions/{name}", response_model=ActionDetail, responses=errors(404), tags=["actions"])
    async def get_action(name: str) -> Response:
        """The action as stored (secrets as references), with an `ETag`."""
        return detail_response(name)

    @router.put(
        "/actions/{name}",
        response_model=ActionDetail,
        responses=errors(*BODY_ERRORS, 404, 409, 412),
        openapi_extra=document_body("ActionDocument"),
        tags=["actions"],
    )
    async def update_action(name: str, request: Request, if_match: IfMatch = None) -> Response:
        """Replace an action under the edit rules; a rename updates the journeys."""
        check_if_match(if_match, etag(catalog.document(name)))
        document = await read_json(request)
        await state.calls.journal.flush()  # a rename moves the recent calls too
        action = catalog.update(name, document)
        return detail_response(action.name)

    @router.delete("/actions/{name}", status_code=204, responses=errors(404, 409, 412, 422), tags=["actions"])
    async def delete_action(name: str, if_match: IfMatch = None) -> Response:
        """Delete an action no journey uses."""
        check_if_match(if_match, etag(catalog.document(name)))
        catalog.delete(name)
        return Response(status_code=204)

    @router.post(
        "/actions/{name}/duplicate",
        status_code=201,
        response_model=ActionDetail,
        responses=ACTION_LINKS | errors(*BODY_ERRORS, 404, 409),
        tags=["actions"],
    )
    async def duplicate_action(name: str, body: DuplicateBody | None = None) -> Response:
        """Copy an action (and its sealed secrets) as `NAME_copy` or the name given."""
        action = catalog.duplicate(name, (body or DuplicateBody()).name)
        return detail_response(action.name, 201, location=f"/actions/{action.name}")

    @router.get(
        "/actions/{name}/journeys", response_model=JourneyUsers, responses=errors(404), tags=["actions"]
    )
    async def action_journeys(name: str) -> Response:
        """Used in: the journeys whose nodes use the action."""
        catalog.action(name)
        users = catalog.registry.used_in(name)
        return JSONResponse(
            {"journeys": [journey_summary(j.id, j.definition.name, j.definition.status) for j in users]}
        )

    # -- calls ---------------------------------------------------------------------------------

    @router.post(
        "/actions/{name}/invoke",
        response_model=CallResult,
        responses=ACCEPTED_LINKS | errors(*BODY_ERRORS, 404, 503) | NO_FLEET,
        openapi_extra=model_body(CallBody, required=False),
        tags=["calls"],
    )
    async def invoke(
        name: str,
        request: Request,
        queued: Annotated[
            bool,
            Query(alias="async", description="queue the call for the fleet's workers (serve --redis): 202"),
        ] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        """One call, as a journey node makes it; what happens to the call is in the result.
        With `async=true` the call is queued for `actionrt worker` processes instead: 202 with
        its `callId` (unknown action or bad input refused first, nothing queued)."""
        # Plain invokes are served by hot_path.py before this route; it answers the rest.
        call = await read_model(request, CallBody)
        if queued:
            return await submit(name, call, idempotency_key)
        result = await state.calls.invoke(
            name, CallInput(call.params, call.headers, call.query, call.path, call.timeout)
        )
        return JSONResponse({**result_payload(result), "callId": last_call_id()})

    def fleet_queue() -> Queue:
        if state.queue is None:
            raise FleetRequiredError("async calls need the fleet: start the service with serve --redis URL")
        return state.queue

    async def submit(name: str, call: CallBody, idempotency_key: str | None) -> Response:
        from actionrt.fleet.calls import new_call_id
        from actionrt.fleet.queue import CallRefusedError

        queue = fleet_queue()
        catalog.action(name)  # 404 as for invoke
        try:
            call_id = await queue.submit(
                name,
                call.params,
                headers=call.headers,
                query=call.query,
                path=call.path,
                idempotency_key=idempotency_key or new_call_id(),  # keyed: GET /calls knows it
                timeout=call.timeout,
            )
        except CallRefusedError as exc:
            message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
            raise ValidationError.single("", exc.field, message) from None
        return JSONResponse(
            {"callId": call_id, "action": name}, 202, headers={"location": f"/calls/{call_id}"}
        )

    @router.get(
        "/calls/{callId}",
        response_model=CallResult,
        responses={202: {"description": "Queued or running: not done yet", "model": CallPending}}
        | errors(404, 422, 503)
        | NO_FLEET,
        tags=["calls"],
    )
    async def get_call(
        call_id: Annotated[str, Path(alias="callId", pattern=CALL_ID, description="from an async invoke")],
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for the result if not done")
        ] = 0,
    ) -> Response:
        """The result of a call queued with `async=true`: 200 once done (kept 24 h), 202 while
        queued or running (after waiting up to `wait` s), 404 for a call id the queue doesn't know."""
        queue = fleet_queue()
        result = await queue.result(call_id)
        if result is None:
            if not await queue.submitted(call_id):
                raise NotFoundError(f"no call {call_id!r} in queue {queue.name!r} (or its result expired)")
            if wait:
                result = await queue.result(call_id, wait=wait)
        if result is None:
            return JSONResponse({"callId": call_id, "done": False}, 202, headers={"retry-after": "1"})
        return JSONResponse({**result_payload(result), "callId": call_id})

    @router.post(
        "/actions/{name}/test",
        response_model=TestResult,
        responses=errors(*BODY_ERRORS, 404),
        tags=["calls"],
    )
    async def test_request(name: str, body: TestBody | None = None) -> Response:
        """Send test request: a real call with typed-in values and re-entered credentials."""
        call = body or TestBody()
        result, structure = await state.calls.test(
            name, CallInput(call.params, call.headers, call.query, call.path, call.timeout), call.credentials
        )
        payload = {**result_payload(result), "callId": last_call_id()}
        payload["structure"] = {
            "ok": result.ok and not structure,
            "problems": [{"path": p.path, "message": p.message} for p in structure],
        }
        return JSONResponse(payload)

    @router.post(
        "/actions/{name}/check-authentication",
        response_model=AuthCheckOut,
        responses=errors(*BODY_ERRORS, 404),
        tags=["calls"],
    )
    async def check_authentication(name: str, body: CredentialsBody | None = None) -> Response:
        """Call only the token endpoint (or say what static credentials would send, masked)."""
        credentials = (body or CredentialsBody()).credentials
        check = await state.calls.check_authentication(name, credentials)
        return JSONResponse({"ok": check.ok, "message": check.message})

    @router.get(
        "/actions/{name}/calls", response_model=RecentCalls, responses=errors(404, 422), tags=["calls"]
    )
    async def recent_calls(
        name: str, limit: Annotated[int, Query(ge=1, le=500, description="newest first")] = 50
    ) -> Response:
        """Recent calls of the action, newest first, and counts by status."""
        catalog.action(name)
        await state.calls.journal.flush()
        store = state.store
        calls = [
            {
                "at": row.at,
                "kind": row.kind,
                "status": row.status,
                "ok": row.ok,
                "httpStatus": row.http_status,
                "attempts": row.attempts,
                "sent": row.attempts > 0,
                "elapsed": round(row.elapsed, 6),
                "error": row.error,
                "callId": row.call_id,
            }
            for row in store.recent_calls(name, limit)
        ]
        return JSONResponse({"action": name, "counts": store.call_counts(name), "calls": calls})

    # -- journeys ------------------------------------------------------------------------------

    def journey_response(journey_id: str, status: int = 200, **headers: str) -> Response:
        document = catalog.journey(journey_id).definition.model_dump(mode="json")
        return JSONResponse({"journey": document}, status, headers={"etag": etag(document), **headers})

    @router.get("/journeys", response_model=JourneyList, tags=["journeys"])
    async def list_journeys() -> Response:
        """The journeys with their status and the actions they use."""
        journeys = sorted(catalog.registry.journeys.values(), key=lambda j: j.id)
        rows = [
            {**journey_summary(j.id, j.definition.name, j.definition.status), "actions": j.definition.actions}
            for j in journeys
        ]
        return JSONResponse({"journeys": rows})

    @router.post(
        "/journeys",
        status_code=201,
        response_model=JourneyOut,
        responses=JOURNEY_LINKS | errors(*BODY_ERRORS),
        tags=["journeys"],
    )
    async def create_journey(body: JourneyBody) -> Response:
        """Add a journey (its nodes must name actions and map their variables)."""
        journey = catalog.add_journey(body.model_dump(mode="json"))
        return journey_response(journey.id, 201, location=f"/journeys/{journey.id}")

    # Before /journeys/{id}: a 405 names the methods of the first route matching the path.
    @router.post(
        "/journeys/preview",
        response_model=MappingPreview,
        responses=errors(*BODY_ERRORS),
        tags=["journeys"],
    )
    async def preview_mappings(body: MappingPreviewBody) -> Response:
        """A node's mappings evaluated by the runtime's sandboxed expressions against a sample
        `profile`, `event` and earlier `actions` results: each mapping's value, or its error."""
        environment = state.calls.runtime.expressions
        context = {"profile": body.profile, "event": body.event, "actions": body.actions}
        values: dict[str, dict[str, Any]] = {}
        failures: dict[str, dict[str, str]] = {}
        groups = body.mappings.model_dump(include={"params", "headers", "query"})
        for group, mapping in groups.items():
            for key, source in mapping.items():
                try:
                    value = environment.evaluate(source, context) if isinstance(source, str) else source
                    if callable(value):
                        raise ExpressionError("gives a function, not a value (use brackets: cart['items'])")
                except ExpressionError as exc:
                    failures.setdefault(group, {})[key] = str(exc)
                else:
                    values.setdefault(group, {})[key] = value
        return JSONResponse(jsonable_encoder({"values": values, "errors": failures}))

    @router.get("/journeys/{id}", response_model=JourneyOut, responses=errors(404), tags=["journeys"])
    async def get_journey(id: str) -> Response:
        """One journey as stored, with an `ETag`."""
        return journey_response(id)

    @router.put(
        "/journeys/{id}",
        response_model=JourneyOut,
        responses=errors(*BODY_ERRORS, 404, 409, 412),
        tags=["journeys"],
    )
    async def update_journey(id: str, body: JourneyBody, if_match: IfMatch = None) -> Response:
        """Replace a journey; a live one may change only its name and status."""
        check_if_match(if_match, etag(catalog.journey(id).definition.model_dump(mode="json")))
        catalog.update_journey(id, body.model_dump(mode="json"))
        return journey_response(id)

    async def set_status(journey_id: str, status: Literal["draft", "live"]) -> Response:
        document = catalog.journey(journey_id).definition.model_dump(mode="json")
        catalog.update_journey(journey_id, {**document, "status": status})
        return journey_response(journey_id)

    @router.post(
        "/journeys/{id}/publish",
        response_model=JourneyOut,
        responses=errors(404, 422),
        tags=["journeys"],
    )
    async def publish_journey(id: str) -> Response:
        """Make the journey live: its actions' pinned fields become read-only."""
        return await set_status(id, "live")

    @router.post("/journeys/{id}/stop", response_model=JourneyOut, responses=errors(404), tags=["journeys"])
    async def stop_journey(id: str) -> Response:
        """Back to draft: the journey and its actions can be edited again."""
        return await set_status(id, "draft")

    @router.delete("/journeys/{id}", status_code=204, responses=errors(404, 409, 412, 422), tags=["journeys"])
    async def delete_journey(id: str, if_match: IfMatch = None) -> Response:
        """Delete a journey that is not live (stop it first)."""
        check_if_match(if_match, etag(catalog.journey(id).definition.model_dump(mode="json")))
        catalog.delete_journey(id)
        return Response(status_code=204)

    # -- payload -------------------------------------------------------------------------------

    @router.post(
        "/payload/fields", response_model=FieldRows, responses=errors(*BODY_ERRORS), tags=["actions"]
    )
    async def payload_fields(body: SampleBody) -> Response:
        """The message-parameter table of a sample payload."""
        root, problems = infer_fields(body.sample, source="", where="sample")
        if problems:
            raise ValidationError(problems)
        return JSONResponse({"fields": field_rows(root)})

    # -- limits --------------------------------------------------------------------------------

    def rule(uid: str) -> dict[str, Any]:
        try:
            return rule_payload(state.rules.get(uid))
        except KeyError:
            raise NotFoundError(f"no rule with uid {uid!r}") from None

    @router.get("/limits/rules", response_model=RuleList, responses=errors(422), tags=["limits"])
    async def list_rules(kind: Literal["capping", "throttling"] | None = None) -> Response:
        """The capping and throttling rules with `uid`, `kind`, `deployed`."""
        return JSONResponse({"rules": [rule_payload(row) for row in state.rules.list(kind)]})

    async def create_rule(kind: RuleKind, request: Request) -> Response:
        row, created = state.rules.create(kind, await read_json(request))
        return JSONResponse(rule_payload(row), 201 if created else 200)

    @router.post(
        "/limits/capping",
        status_code=201,
        response_model=RuleOut,
        responses=SAME_RULE | RULE_LINKS | errors(*BODY_ERRORS),
        openapi_extra=document_body("CappingRule"),
        tags=["limits"],
    )
    async def create_capping(request: Request) -> Response:
        """Add a capping rule in its published JSON shape (not yet deployed)."""
        return await create_rule("capping", request)

    @router.post(
        "/limits/throttling",
        status_code=201,
        response_model=RuleOut,
        responses=SAME_RULE | RULE_LINKS | errors(*BODY_ERRORS),
        openapi_extra=document_body("ThrottlingRule"),
        tags=["limits"],
    )
    async def create_throttling(request: Request) -> Response:
        """Add a throttling rule in its published JSON shape (not yet deployed)."""
        return await create_rule("throttling", request)

    @router.get("/limits/rules/{uid}", response_model=RuleOut, responses=errors(404), tags=["limits"])
    async def get_rule(uid: str) -> Response:
        """One rule."""
        return JSONResponse(rule(uid))

    @router.put(
        "/limits/rules/{uid}",
        response_model=RuleOut,
        responses=errors(404, 409, *BODY_ERRORS),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/CappingRule"},
                                {"$ref": "#/components/schemas/ThrottlingRule"},
                            ]
                        }
                    }
                },
            }
        },
        tags=["limits"],
    )
    async def update_rule(uid: str, request: Request) -> Response:
        """Edit an undeployed rule in its kind's JSON shape; the answer carries its new `uid`
        (a rule's uid comes from its content)."""
        rule(uid)
        return JSONResponse(rule_payload(state.rules.replace(uid, await read_json(request))))

    @router.post("/limits/rules/{uid}/deploy", response_model=RuleOut, responses=errors(404), tags=["limits"])
    async def deploy_rule(uid: str) -> Response:
        """The rule applies to calls from now on."""
        rule(uid)
        return JSONResponse(rule_payload(state.rules.deploy(uid)))

    @router.post(
        "/limits/rules/{uid}/undeploy", response_model=RuleOut, responses=errors(404), tags=["limits"]
    )
    async def undeploy_rule(uid: str) -> Response:
        """The rule stops applying to calls (its counters go with it)."""
        rule(uid)
        return JSONResponse(rule_payload(state.rules.undeploy(uid)))

    @router.delete("/limits/rules/{uid}", status_code=204, responses=errors(404, 409), tags=["limits"])
    async def delete_rule(uid: str) -> Response:
        """Delete an undeployed rule."""
        rule(uid)
        state.rules.delete(uid)
        return Response(status_code=204)

    # -- meta ----------------------------------------------------------------------------------

    @router.get("/schema/action", response_model=dict[str, Any], tags=["meta"])
    async def action_schema() -> Response:
        """The JSON Schema of an action document."""
        from actionrt.definition import action_json_schema

        return JSONResponse(action_json_schema())

    @router.get("/healthz", response_model=Health, tags=["meta"])
    async def health() -> Response:
        """Live, with the number of loaded actions."""
        return JSONResponse({"ok": True, "actions": len(catalog.registry.actions)})

    return router


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
