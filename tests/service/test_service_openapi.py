"""The OpenAPI document describes exactly the API's routes."""

from __future__ import annotations

import re

from starlette.routing import Route


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
