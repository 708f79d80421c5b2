"""The API's request and response models: the routes declare them, FastAPI validates requests
with them and generates `/openapi.json` from them."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from actionrt.journeys import JOURNEY_ID, ActionNodeSpec

JourneyStatus = Literal["draft", "live"]

# Bodies nested deeper than this are refused before any validator or renderer walks them.
MAX_DEPTH = 64
# The validation context of a body whose bytes `within_depth` passed (`parse_model`): its
# validators need not walk it. Without it (FastAPI's validation, a model built in code) they do.
DEPTH_CHECKED: Final = {"depth": "checked"}


def within_depth(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON `body` can't be nested deeper than `limit` levels: it holds at most
    `limit` `{` and `[` in all (brackets inside strings only over-count). For the bench's
    invoke body ~3,800 instructions against ~17,000 for the validator's walk of its params: an
    API invoke cost the service 159,900 -> 147,300 (callgrind, the call's result cached;
    bench/README.md "The service's API")."""
    return body.count(b"{") + body.count(b"[") <= limit


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where `value` is nested deeper than `limit` levels (a dotted path, "" for the root), or None."""
    if not _deeper_than(value, limit):
        return None
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > limit:
            return path
        if isinstance(item, dict):
            stack += [(v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item)]
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` holds anything more than `limit` levels down: a walk level by level
    that builds no paths (`too_deep` names the place only once there is one). A value of 50
    keys each holding a list and an object: ~225,000 instructions against ~833,000 for the
    walk building every path (callgrind)."""
    level = [value]
    for _ in range(limit + 1):
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below += item.values()
            elif isinstance(item, list):
                below += item
        if not below:
            return False
        level = below
    return True


def shallow(value: Any, info: ValidationInfo) -> Any:
    """A validator's check: ValueError naming where `value` is nested too deep (none to make
    for a body `within_depth` passed: the `DEPTH_CHECKED` context)."""
    if info.context is DEPTH_CHECKED:
        return value
    where = too_deep(value)
    if where is not None:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels at {where or 'the root'}")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    path: str = Field(description="dotted field path, `[i]` for list items; empty for the whole body")
    message: str


class RefusedField(BaseModel):
    field: str
    journeys: list[str]


class ProblemDetails(BaseModel):
    """Every error answer (RFC 9457, `application/problem+json`); `problems` lists each wrong
    field, `refused` the fields a live journey pins."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    problems: list[FieldProblem] = Field(default_factory=list)
    action: str | None = None
    refused: list[RefusedField] | None = None


# -- requests -----------------------------------------------------------------------------------


class CallBody(_Body):
    """The values of one call (invoke, Send test request)."""

    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    timeout: float | None = Field(default=None, ge=1, le=30)

    _shallow = field_validator("params", "headers", "query")(shallow)


class TestBody(CallBody):
    """Send test request: the call's values and the credentials re-entered for it."""

    credentials: dict[str, str] = Field(default_factory=dict)


class CredentialsBody(_Body):
    credentials: dict[str, str] = Field(default_factory=dict)


class DuplicateBody(_Body):
    name: str | None = None


class SampleBody(_Body):
    sample: Any

    _shallow = field_validator("sample")(shallow)


class JourneyBody(_Body):
    """A journey as written in its file; `kind: journey` may be left out."""

    kind: Literal["journey"] = "journey"
    id: str = Field(pattern=JOURNEY_ID)
    name: str = Field(min_length=1)
    status: JourneyStatus = "draft"
    nodes: list[ActionNodeSpec] = Field(default_factory=list)


# -- answers ------------------------------------------------------------------------------------


class ActionSummary(BaseModel):
    name: str
    description: str | None
    method: Literal["POST", "PUT", "GET"]
    host: str
    url: str
    authentication: str
    usedIn: int = Field(description="journeys using the action")
    live: bool = Field(description="a live journey uses it")


class ActionList(BaseModel):
    actions: list[ActionSummary]


class JourneySummary(BaseModel):
    id: str
    name: str
    status: JourneyStatus


class JourneyRow(JourneySummary):
    actions: list[str]


class JourneyList(BaseModel):
    journeys: list[JourneyRow]


class JourneyUsers(BaseModel):
    journeys: list[JourneySummary]


class JourneyDocument(BaseModel):
    kind: Literal["journey"]
    id: str
    name: str
    status: JourneyStatus
    nodes: list[ActionNodeSpec]


class JourneyOut(BaseModel):
    journey: JourneyDocument


class HeaderVariable(BaseModel):
    name: str
    label: str
    optional: bool


class ParamVariable(BaseModel):
    label: str
    type: str
    optional: bool


class Variables(BaseModel):
    params: dict[str, ParamVariable]
    headers: list[HeaderVariable]
    query: list[HeaderVariable]
    path: bool


class ActionDetail(BaseModel):
    action: dict[str, Any] = Field(description="the action as stored: secrets as references only")
    usedIn: list[JourneySummary]
    liveJourneys: list[str]
    editableWhenLive: list[str]
    readOnly: bool
    secrets: list[str] = Field(description="paths of sealed secrets")
    references: list[str] = Field(description="secrets read from providers")
    variables: Variables


class ValidationOk(BaseModel):
    ok: Literal[True]
    problems: list[FieldProblem]


class CallResult(BaseModel):
    """One call's outcome (the contract's result, camelCase). `GET /calls/{callId}` of a fleet
    answers this same model once the call is done."""

    action: str
    status: str = Field(description="the jo_status_code: http_200, http_404, timedout, capped, internalError")
    ok: bool
    httpStatus: int | None
    response: Any
    errorResponse: Any
    attempts: int = Field(description="requests written to the endpoint, retries included")
    sent: bool = Field(description="at least one request reached the wire (false: safe to resend)")
    error: str | None
    errorClass: str | None
    errorCode: str | None
    elapsed: float
    journeyFields: dict[str, Any]
    callId: str | None = Field(
        default=None,
        description="its details: GET /actions/{name}/calls/{callId} (while kept); "
        "a fleet call's id (GET /calls/{callId})",
    )


class CallAccepted(BaseModel):
    """An invoke with `async=true`: the call is queued for the fleet's workers."""

    callId: str = Field(description="its result: GET /calls/{callId}")
    action: str


class CallPending(BaseModel):
    """`GET /calls/{callId}` of a call queued and not done yet (queued, waiting on a throttling
    rule, or running)."""

    callId: str
    done: Literal[False] = False


class StructureCheck(BaseModel):
    ok: bool
    problems: list[FieldProblem]


class TestResult(CallResult):
    structure: StructureCheck


class AuthCheckOut(BaseModel):
    ok: bool
    message: str


class RecentCall(BaseModel):
    at: float
    kind: Literal["invoke", "test"]
    status: str
    ok: bool
    httpStatus: int | None
    attempts: int
    sent: bool
    elapsed: float
    error: str | None
    callId: str | None = Field(
        description="its details: GET /actions/{name}/calls/{callId} (while kept; null for calls "
        "recorded before call ids were kept)"
    )


class RecentCalls(BaseModel):
    action: str
    counts: dict[str, int]
    calls: list[RecentCall]


class FieldRow(BaseModel):
    path: str
    name: str
    depth: int
    type: str
    sample: Any
    container: bool
    canBeVariable: bool
    whyConstant: str | None


class FieldRows(BaseModel):
    fields: list[FieldRow]


class RuleOut(BaseModel):
    uid: str
    kind: Literal["capping", "throttling"]
    deployed: bool
    rule: dict[str, Any]


class RuleList(BaseModel):
    rules: list[RuleOut]


class Health(BaseModel):
    ok: bool
    actions: int
