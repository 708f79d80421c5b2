"""The OpenAPI 3.1 document of the service's JSON API, written here beside the routes it
describes; a test checks that both list the same paths and methods."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from actionrt.definition import ActionDefinition
from actionrt.journeys import JourneyDefinition
from actionrt.limits.rules import CappingRule, ThrottlingRule

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


PROBLEMS = _json(_ref("Problems"), "Invalid input: every wrong field path with its message")
NOT_FOUND = _json(_ref("Error"), "No such action, journey or rule")
REFUSED = _json(
    {"oneOf": [_ref("EditRefused"), _ref("Problems"), _ref("Error")]},
    "Refused: fields a live journey pins (with the journeys), a name already taken, "
    "or a journey still using the action",
)
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
UID = {"name": "uid", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _schemas() -> dict[str, Any]:
    # Imported here: api imports this module's callers, not the other way round.
    from actionrt.service.api import CallBody, CredentialsBody, DuplicateBody, SampleBody, TestBody

    schemas: dict[str, Any] = {}
    models: list[tuple[str, type[BaseModel]]] = [
        ("ActionDocument", ActionDefinition),
        ("CallBody", CallBody),
        ("TestBody", TestBody),
        ("CredentialsBody", CredentialsBody),
        ("DuplicateBody", DuplicateBody),
        ("SampleBody", SampleBody),
        ("CappingRule", CappingRule),
        ("ThrottlingRule", ThrottlingRule),
        ("JourneyDocument", JourneyDefinition),
    ]
    for name, model in models:
        schema = model.model_json_schema(ref_template=REF, mode="validation", by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    # The service fills in `kind: journey` when a created journey leaves it out.
    schemas["JourneyDocument"]["required"].remove("kind")
    schemas.update(
        {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Problems": {
                "type": "object",
                "required": ["error", "problems"],
                "properties": {
                    "error": {"type": "string"},
                    "problems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path", "message"],
                            "properties": {
                                "path": {"type": "string", "description": "dotted field path"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "EditRefused": {
                "type": "object",
                "required": ["error", "action", "refused"],
                "properties": {
                    "error": {"type": "string"},
                    "action": {"type": "string"},
                    "refused": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "journeys": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
            },
            "ActionSummary": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": ["string", "null"]},
                    "method": {"enum": ["POST", "PUT", "GET"]},
                    "host": {"type": "string"},
                    "url": {"type": "string"},
                    "authentication": {"type": "string"},
                    "usedIn": {"type": "integer", "description": "journeys using the action"},
                    "live": {"type": "boolean", "description": "a live journey uses it"},
                },
            },
            "JourneySummary": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "status": {"enum": ["draft", "live"]},
                },
            },
            "ActionDetail": {
                "type": "object",
                "properties": {
                    "action": {
                        **_ref("ActionDocument"),
                        "description": "as stored: secrets appear only as {{ secrets.console:ID }}",
                    },
                    "usedIn": {"type": "array", "items": _ref("JourneySummary")},
                    "liveJourneys": {"type": "array", "items": {"type": "string"}},
                    "readOnly": {"type": "boolean"},
                    "editableWhenLive": {"type": "array", "items": {"type": "string"}},
                    "secrets": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "field paths holding sealed secrets (keys of `credentials`)",
                    },
                    "references": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "secrets read from providers, `NAME` or `PROVIDER:NAME` "
                        "(re-entered in `credentials` as `secrets.NAME`)",
                    },
                    "variables": {"type": "object"},
                },
            },
            "Result": {
                "type": "object",
                "properties": {
                    "action": {"type": "string"},
                    "status": {
                        "type": "string",
                        "description": "jo_status_code: http_<code>, timedout, capped, internalError",
                    },
                    "ok": {"type": "boolean"},
                    "httpStatus": {"type": ["integer", "null"]},
                    "response": {},
                    "errorResponse": {},
                    "attempts": {"type": "integer"},
                    "error": {"type": ["string", "null"]},
                    "errorClass": {"type": ["string", "null"]},
                    "errorCode": {"type": ["string", "null"]},
                    "elapsed": {"type": "number"},
                    "journeyFields": {"type": "object"},
                    "callId": {
                        "type": ["string", "null"],
                        "description": "Its details: GET /actions/{name}/calls/{callId} (while kept)",
                    },
                },
            },
            "TestResult": {
                "allOf": [
                    _ref("Result"),
                    {
                        "type": "object",
                        "properties": {
                            "structure": {
                                "type": "object",
                                "description": "the answer checked against the response example",
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "problems": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "path": {"type": "string"},
                                                "message": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                ]
            },
            "AuthCheck": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}},
            },
            "Rule": {
                "type": "object",
                "properties": {
                    "uid": {"type": "string"},
                    "kind": {"enum": ["capping", "throttling"]},
                    "deployed": {"type": "boolean"},
                    "rule": {"type": "object", "description": "the rule in its published JSON shape"},
                },
            },
            "Field": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "name": {"type": "string"},
                    "depth": {"type": "integer"},
                    "type": {"type": "string"},
                    "sample": {},
                    "container": {"type": "boolean"},
                    "canBeVariable": {"type": "boolean"},
                    "whyConstant": {"type": ["string", "null"]},
                },
            },
        }
    )
    return schemas


def openapi_document() -> dict[str, Any]:
    """The API's description, built once per app."""
    action = {"content": {"application/json": {"schema": _ref("ActionDocument")}}, "required": True}
    detail = _json(_ref("ActionDetail"))
    rule = _json(_ref("Rule"))
    same_rule = _json(_ref("Rule"), "The same rule exists already: it is answered, nothing is added")
    paths: dict[str, Any] = {
        "/actions": {
            "get": _op(
                "List the actions (name, description, method, host, Used in)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"actions": {"type": "array", "items": _ref("ActionSummary")}},
                        }
                    )
                },
            ),
            "post": _op(
                "Create an action; literal secrets in its authentication are sealed",
                {"201": detail, "409": REFUSED, "422": PROBLEMS},
                requestBody=action,
            ),
        },
        "/actions/validate": {
            "post": _op(
                "Check an action as create (or update, with ?replacing=NAME) would; nothing is saved",
                {"200": _json({"type": "object"}), "409": REFUSED, "422": PROBLEMS},
                requestBody=action,
                parameters=[{"name": "replacing", "in": "query", "schema": {"type": "string"}}],
            ),
        },
        "/actions/{name}": {
            "parameters": [NAME],
            "get": _op("One action, with Used in and its read-only state", {"200": detail, "404": NOT_FOUND}),
            "put": _op(
                "Replace an action under the edit rules (409 names fields and live journeys)",
                {"200": detail, "404": NOT_FOUND, "409": REFUSED, "422": PROBLEMS},
                requestBody=action,
            ),
            "delete": _op(
                "Delete an action no journey uses",
                {"204": {"description": "Deleted"}, "404": NOT_FOUND, "409": REFUSED},
            ),
        },
        "/actions/{name}/duplicate": {
            "parameters": [NAME],
            "post": _op(
                "Copy an action (default name NAME_copy), its sealed secrets included",
                {"201": detail, "404": NOT_FOUND, "409": REFUSED, "422": PROBLEMS},
                requestBody=_body(_ref("DuplicateBody"), required=False),
            ),
        },
        "/actions/{name}/journeys": {
            "parameters": [NAME],
            "get": _op(
                "View journeys: the journeys that use the action",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"journeys": {"type": "array", "items": _ref("JourneySummary")}},
                        }
                    ),
                    "404": NOT_FOUND,
                },
            ),
        },
        "/actions/{name}/invoke": {
            "parameters": [NAME],
            "post": _op(
                "Invoke the action as a journey node does; the result is never an HTTP error",
                {"200": _json(_ref("Result")), "404": NOT_FOUND, "422": PROBLEMS},
                requestBody=_body(_ref("CallBody"), required=False),
            ),
        },
        "/actions/{name}/test": {
            "parameters": [NAME],
            "post": _op(
                "Send test request: a real call with typed-in values; re-entered credentials "
                "(keyed by secret field path) are used for this call only and never stored",
                {"200": _json(_ref("TestResult")), "404": NOT_FOUND, "422": PROBLEMS},
                requestBody=_body(_ref("TestBody"), required=False),
            ),
        },
        "/actions/{name}/check-authentication": {
            "parameters": [NAME],
            "post": _op(
                "Check the authentication: call only the token endpoint (credentials as for test)",
                {"200": _json(_ref("AuthCheck")), "404": NOT_FOUND, "422": PROBLEMS},
                requestBody=_body(_ref("CredentialsBody"), required=False),
            ),
        },
        "/actions/{name}/calls": {
            "parameters": [
                NAME,
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            ],
            "get": _op(
                "Recent calls of the action, newest first, and their counts by status",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                                "calls": {"type": "array"},
                            },
                        }
                    ),
                    "404": NOT_FOUND,
                },
            ),
        },
        "/journeys": {
            "get": _op("List the journeys", {"200": _json({"type": "object"})}),
            "post": _op(
                "Create a journey (its nodes must name existing actions and map their variables)",
                {"201": _json({"type": "object"}), "422": PROBLEMS},
                requestBody=_body(_ref("JourneyDocument")),
            ),
        },
        "/journeys/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": _op("One journey", {"200": _json({"type": "object"}), "404": NOT_FOUND}),
        },
        "/payload/fields": {
            "post": _op(
                "The message-parameter table of an example payload: every field with its inferred type",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"fields": {"type": "array", "items": _ref("Field")}},
                        }
                    ),
                    "422": PROBLEMS,
                },
                requestBody=_body(_ref("SampleBody")),
            ),
        },
        "/limits/rules": {
            "get": _op(
                "List capping and throttling rules",
                {
                    "200": _json(
                        {"type": "object", "properties": {"rules": {"type": "array", "items": _ref("Rule")}}}
                    ),
                    "422": PROBLEMS,
                },
                parameters=[{"name": "kind", "in": "query", "schema": {"enum": ["capping", "throttling"]}}],
            ),
        },
        "/limits/capping": {
            "post": _op(
                "Create a capping rule (published endpointConfigs shape); not active until deployed",
                {"201": rule, "200": same_rule, "422": PROBLEMS},
                requestBody=_body(_ref("CappingRule")),
            ),
        },
        "/limits/throttling": {
            "post": _op(
                "Create a throttling rule (published throttlingConfigs shape); not active until deployed",
                {"201": rule, "200": same_rule, "422": PROBLEMS},
                requestBody=_body(_ref("ThrottlingRule")),
            ),
        },
        "/limits/rules/{uid}": {
            "parameters": [UID],
            "get": _op("One rule", {"200": rule, "404": NOT_FOUND}),
            "delete": _op(
                "Delete an undeployed rule",
                {"204": {"description": "Deleted"}, "404": NOT_FOUND, "409": REFUSED},
            ),
        },
        "/limits/rules/{uid}/deploy": {
            "parameters": [UID],
            "post": _op("Deploy a rule: it applies to calls from now on", {"200": rule, "404": NOT_FOUND}),
        },
        "/limits/rules/{uid}/undeploy": {
            "parameters": [UID],
            "post": _op("Undeploy a rule", {"200": rule, "404": NOT_FOUND}),
        },
        "/schema/action": {
            "get": _op("The JSON Schema of the action document", {"200": _json({"type": "object"})}),
        },
        "/healthz": {
            "get": _op("Health check", {"200": _json({"type": "object"})}),
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics of the calls (text format; docs/observability.md)",
                {"200": {"description": "The Prometheus text format", "content": {"text/plain": {}}}},
            ),
        },
        "/monitoring/calls": {
            "parameters": [
                {"name": "window", "in": "query", "schema": {"enum": ["hour", "day"]}},
                {"name": "action", "in": "query", "schema": {"type": "string"}},
            ],
            "get": _op(
                "Calls per step by status, latency p50/p95/p99, errors, capped and throttled: the last "
                "hour by minute or the last day by 15 minutes (the Monitoring page's data)",
                {"200": _json({"type": "object"}), "422": PROBLEMS},
            ),
        },
        "/monitoring/recent": {
            "parameters": [
                {"name": "action", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "get": _op(
                "The last calls kept with details (newest first, 50 by default): callId, action, status",
                {"200": _json({"type": "object"}), "422": PROBLEMS},
            ),
        },
        "/actions/{name}/calls/{callId}": {
            "parameters": [
                NAME,
                {"name": "callId", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "get": _op(
                "One recent call's details: each attempt's request and answer, credentials masked",
                {"200": _json({"type": "object"}), "404": NOT_FOUND},
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "actionrt service",
            "version": "1",
            "description": "Configure, test and invoke journey custom actions. With ACTIONRT_API_TOKEN "
            "set, send `Authorization: Bearer <token>`. State-changing requests from a browser need "
            "the console's X-CSRF-Token.",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": paths,
    }


def openapi_json() -> bytes:
    return json.dumps(openapi_document()).encode()
