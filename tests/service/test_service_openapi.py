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
