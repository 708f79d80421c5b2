"""The OpenAPI document describes exactly the API's routes."""

from __future__ import annotations

import re

from service_support import ROOT
from starlette.routing import Route

from actionrt.service.routes_doc import replace_table, route_table


async def test_every_api_route_is_described_and_every_description_is_routed(service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = {
        (route.path, method)
        for route in service.app.routes
        if isinstance(route, Route) and not _is_page(route.path)
        for method in (route.methods or ()) - {"HEAD"}
    }
    assert described == routed


async def test_every_reference_resolves(service) -> None:
    text = (await service.client.get("/openapi.json")).text
    document = (await service.client.get("/openapi.json")).json()
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in document["components"]["schemas"], name
    assert "$defs" not in text


def _is_page(path: str) -> bool:
    return path in ("/", "/openapi.json") or path.startswith("/console")


async def test_rule_and_journey_bodies_are_described_field_by_field(service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def body(path: str) -> dict:
        ref = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        return schemas[ref["$ref"].rsplit("/", 1)[1]]

    capping = body("/limits/capping")
    assert set(capping["required"]) == {"methods", "url", "services"}
    assert {"url", "methods", "services"} <= set(capping["properties"])
    assert set(schemas["Rating"]["properties"]) == {"maxCallsCount", "periodInMs"}
    throttling = body("/limits/throttling")
    assert set(throttling["required"]) == {"methods", "urlPattern", "maxThroughput"}
    assert throttling["properties"]["maxThroughput"]["minimum"] == 200
    journey = body("/journeys")
    assert set(journey["required"]) == {"id", "name"}  # `kind: journey` may be left out
    assert {"id", "name", "status", "nodes"} <= set(journey["properties"])


async def test_the_route_table_of_the_docs_is_the_documents(service) -> None:
    """docs/service.md lists the routes as the document does (regenerate it with
    `uv run python -m actionrt.service.routes_doc docs/service.md`)."""
    document = (await service.client.get("/openapi.json")).json()
    docs = ROOT / "docs" / "service.md"
    text = docs.read_text()
    assert replace_table(text, route_table(document)) == text


async def test_every_error_answer_is_documented_as_problem_details(service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith("4"):
                    assert answer["content"] == {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/ProblemDetails"}
                        }
                    }, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
