"""The API's contract with its clients: problem details, 405 with its Allow, ETag and If-Match,
bodies too deep or of the wrong shape, journeys edited, published, stopped and deleted, one
Runtime for every action, and recent calls written off the request path."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiohttp import web
from service_support import Endpoint, Service, action

from actionrt.service.store import Store

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def as_a_script(service: Service) -> None:
    """Requests as a script makes them: bodiless POST and DELETE carry `X-CSRF-Token` (any
    value; the CSRF rule of security.py)."""
    service.client.headers["x-csrf-token"] = "script"


def problems(response: Any) -> dict[str, str]:
    return {p["path"]: p["message"] for p in response.json()["problems"]}


# -- problem details and methods ---------------------------------------------------------------


async def test_every_error_is_a_problem_details_document(service: Service) -> None:
    answers = {
        404: await service.client.get("/actions/nothere"),
        422: await service.client.post("/actions", json={"name": "bad name!"}),
        415: await service.client.post("/actions", content=b"{}", headers={"content-type": "text/plain"}),
        400: await service.client.post(
            "/actions", content=b"{nope", headers={"content-type": "application/json"}
        ),
        405: await service.client.patch("/actions"),
    }
    for status, answer in answers.items():
        assert answer.status_code == status
        assert answer.headers["content-type"] == PROBLEM
        body = answer.json()
        assert (body["status"], body["type"]) == (status, "about:blank")
        assert body["title"]
    assert "name" in problems(answers[422])
    foreign = await service.client.get("/actions", headers={"host": "attacker.example"})
    assert foreign.status_code == 403 and foreign.headers["content-type"] == PROBLEM
    assert foreign.json()["status"] == 403 and "loopback" in foreign.json()["detail"]


async def test_405_allows_every_method_of_the_path(service: Service) -> None:
    answer = await service.client.patch("/actions/loyaltyUpdate")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
    journeys = await service.client.put("/journeys")
    assert set(journeys.headers["allow"].split(", ")) >= {"GET", "POST"}


async def test_query_parameters_are_checked_against_the_documented_limits(service: Service) -> None:
    too_many = await service.client.get("/actions/loyaltyUpdate/calls", params={"limit": 501})
    assert too_many.status_code == 422 and "limit" in problems(too_many)
    kind = await service.client.get("/limits/rules", params={"kind": "other"})
    assert kind.status_code == 422 and "kind" in problems(kind)
    document = (await service.client.get("/openapi.json")).json()
    limit = next(
        p for p in document["paths"]["/actions/{name}/calls"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 500)


# -- bodies too deep or of the wrong shape -----------------------------------------------------


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_a_deeply_nested_body_is_refused_with_where_never_500(service: Service) -> None:
    for route in ("/actions", "/limits/capping", "/actions/loyaltyUpdate"):
        for depth in (100, 100_000):
            method = "PUT" if route == "/actions/loyaltyUpdate" else "POST"
            answer = await service.client.request(
                method, route, content=nested(depth).encode(), headers={"content-type": "application/json"}
            )
            assert answer.status_code == 400, (route, depth, answer.text)
            assert "nested deeper than 64 levels" in answer.json()["detail"]
    for route, field in (("/actions/loyaltyUpdate/invoke", "params"), ("/payload/fields", "sample")):
        deep = await service.client.post(
            route,
            content=f'{{"{field}": {nested(100)}}}'.encode(),
            headers={"content-type": "application/json"},
        )
        assert deep.status_code == 422 and set(problems(deep)) == {field}, deep.text
        assert "nested deeper than 64 levels at a.a.a" in problems(deep)[field]
        deepest = await service.client.post(
            route,
            content=f'{{"{field}": {nested(100_000)}}}'.encode(),
            headers={"content-type": "application/json"},
        )
        assert deepest.status_code == 400


async def test_bodies_of_the_wrong_shape_name_the_field(service: Service) -> None:
    listed = await service.client.post("/actions", json=[1, 2])
    assert listed.status_code == 422 and problems(listed) == {"": "an action must be a JSON object"}
    call = await service.client.post(
        "/actions/loyaltyUpdate/invoke", json={"params": [1], "path": 3, "query": "q", "headers": {"h": {}}}
    )
    assert call.status_code == 422 and set(problems(call)) == {"params", "path", "query"}
    journey = await service.client.post("/journeys", json={"id": "j", "name": "J", "nodes": [{"id": 1}]})
    assert journey.status_code == 422 and {"nodes[0].id", "nodes[0].action"} <= set(problems(journey))


# -- ETag and If-Match -------------------------------------------------------------------------


async def test_a_stale_write_gets_412_and_changes_nothing(service: Service) -> None:
    created = await service.client.post("/actions", json=action())
    first = created.headers["etag"]
    assert (await service.client.get("/actions/notify")).headers["etag"] == first
    newer = action(description="edited in tab A")
    saved = await service.client.put("/actions/notify", json=newer, headers={"if-match": first})
    assert saved.status_code == 200 and saved.headers["etag"] != first

    stale = await service.client.put(
        "/actions/notify", json=action(description="edited in tab B"), headers={"if-match": first}
    )
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    assert (await service.client.get("/actions/notify")).json()["action"]["description"] == "edited in tab A"
    gone = await service.client.delete("/actions/notify", headers={"if-match": first})
    assert gone.status_code == 412
    assert (await service.client.get("/actions/notify")).status_code == 200
    weak = await service.client.delete("/actions/notify", headers={"if-match": "W/" + saved.headers["etag"]})
    assert weak.status_code == 412
    deleted = await service.client.delete("/actions/notify", headers={"if-match": saved.headers["etag"]})
    assert deleted.status_code == 204


# -- journeys: edit, publish, stop, delete -----------------------------------------------------


async def test_journeys_are_replaced_published_stopped_and_deleted_under_the_edit_rules(
    service: Service,
) -> None:
    await service.client.post("/actions", json=action())
    node = {"id": "n1", "action": "notify", "mappings": {"params": {"email": "{{ profile.email }}"}}}
    journey = {"id": "flow", "name": "Flow", "nodes": [node]}
    created = await service.client.post("/journeys", json=journey)
    assert created.status_code == 201

    renamed = await service.client.put("/journeys/flow", json={**journey, "name": "Flow 2"})
    assert renamed.status_code == 200 and renamed.json()["journey"]["name"] == "Flow 2"
    other_id = await service.client.put("/journeys/flow", json={**journey, "id": "other"})
    assert other_id.status_code == 422 and set(problems(other_id)) == {"id"}

    live = await service.client.post("/journeys/flow/publish")
    assert live.json()["journey"]["status"] == "live"
    assert (await service.client.get("/actions/notify")).json()["readOnly"] is True
    changed = await service.client.put("/journeys/flow", json={**journey, "status": "live", "nodes": []})
    assert changed.status_code == 409 and changed.json()["refused"] == [
        {"field": "nodes", "journeys": ["flow"]}
    ]
    assert (await service.client.delete("/journeys/flow")).status_code == 409
    assert (await service.client.delete("/actions/notify")).status_code == 409

    stopped = await service.client.post("/journeys/flow/stop")
    assert stopped.json()["journey"]["status"] == "draft"
    etag = stopped.headers["etag"]
    assert (await service.client.delete("/journeys/flow", headers={"if-match": '"old"'})).status_code == 412
    assert (await service.client.delete("/journeys/flow", headers={"if-match": etag})).status_code == 204
    assert (await service.client.get("/journeys/flow")).status_code == 404
    assert (await service.client.delete("/actions/notify")).status_code == 204


async def test_publishing_checks_the_nodes_against_the_actions(service: Service) -> None:
    await service.client.post("/actions", json=action())
    journey = {"id": "flow", "name": "Flow", "nodes": [{"id": "n1", "action": "notify"}]}
    refused = await service.client.post("/journeys", json=journey)
    assert refused.status_code == 422 and "nodes[0].mappings.params.email" in problems(refused)


# -- one Runtime for every action --------------------------------------------------------------


async def test_a_capping_rules_connection_limit_holds_across_the_actions_it_matches(
    service: Service,
) -> None:
    """maxHttpConnections: 3 over two actions: 3 requests in flight at the endpoint (6 when each
    action had a runtime of its own). The endpoint is a slow partner: each answer takes 200 ms."""
    in_flight = peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.2)  # the partner's latency, not a wait for the code under test
        in_flight -= 1
        return web.json_response({"messageId": "m-1", "status": "sent"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        base = f"http://127.0.0.1:{port}"
        for name in ("first", "second"):
            assert (
                await service.client.post("/actions", json=action(name, f"{base}/{name}"))
            ).status_code == 201
        rule = {
            "url": f"{base}/*",
            "methods": ["POST"],
            "services": {"action": {"maxCallsCount": 1000, "periodInMs": 1000, "maxHttpConnections": 3}},
        }
        created = await service.client.post("/limits/capping", json=rule)
        assert created.status_code == 201, created.text
        uid = created.json()["uid"]
        assert (await service.client.post(f"/limits/rules/{uid}/deploy")).status_code == 200
        body = {"params": {"email": "a@example.com"}}
        answers = await asyncio.gather(
            *(service.client.post(f"/actions/{name}/invoke", json=body) for name in ["first", "second"] * 3)
        )
        assert [a.json()["status"] for a in answers] == ["http_200"] * 6
        assert peak == 3
    finally:
        await runner.cleanup()


async def test_an_action_replaced_while_a_call_runs_keeps_that_call_on_its_definition(
    service: Service, endpoint: Endpoint
) -> None:
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    runtime = service.state.calls.runtime
    await service.client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
    before = runtime.registry.actions["notify"]
    await service.client.put("/actions/notify", json=action(url=f"{endpoint.base_url}/missing"))
    moved = await service.client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
    assert moved.json()["status"] == "http_404"
    assert runtime.registry.actions["notify"] is not before and service.state.calls.runtime is runtime
    await service.client.delete("/actions/notify")
    assert "notify" not in runtime.actions


# -- recent calls off the request path ---------------------------------------------------------


async def test_invoke_writes_nothing_on_the_event_loop(
    service: Service, endpoint: Endpoint, monkeypatch: Any
) -> None:
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    loop_thread = threading.get_ident()
    writers: list[int] = []
    transaction = Store.transaction

    def watched(self: Store) -> Any:
        writers.append(threading.get_ident())
        return transaction(self)

    monkeypatch.setattr(Store, "transaction", watched)
    for _ in range(20):
        answer = await service.client.post(
            "/actions/notify/invoke", json={"params": {"email": "a@example.com"}}
        )
        assert answer.json()["status"] == "http_200"
    calls = (await service.client.get("/actions/notify/calls")).json()
    assert calls["counts"] == {"http_200": 20}
    assert writers and loop_thread not in writers


async def test_the_preview_route_answers_405_with_its_own_methods(service: Service) -> None:
    # /journeys/preview was matched by /journeys/{id} first, whose methods its 405 listed.
    answer = await service.client.request("OPTIONS", "/journeys/preview", headers={"X-CSRF-Token": "t"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
