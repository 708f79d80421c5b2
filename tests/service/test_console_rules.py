"""Capping and throttling rules and journey editing in the console, in Chromium against a real
service: a form generated from each rule kind's JSON Schema to create and edit a rule, problems
at their fields, deploy, undeploy and delete; a stored journey loaded, edited and saved, its
preview evaluated by the runtime's expressions. And the API routes behind them."""

# ruff: noqa: F811  (the browser fixtures are imported from test_service_console)

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect
from test_console_feedback import add_action, serious_violations
from test_service_console import (  # noqa: F401  (fixtures)
    RunningService,
    browser,
    page,
    recorder,
    running,
    start_service,
)


def host() -> str:
    return f"rules-{uuid.uuid4().hex[:8]}.example.com"


def capping(url: str, calls: int = 10) -> dict[str, Any]:
    return {
        "url": url,
        "methods": ["POST"],
        "services": {"action": {"maxCallsCount": calls, "periodInMs": 1000}},
    }


def rules_by_url(base: str) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{base}/limits/rules").json()["rules"]
    return {r["rule"].get("url") or r["rule"]["urlPattern"]: r for r in rows}


def test_an_undeployed_rule_is_edited_with_put_and_gets_its_new_uid(running: RunningService) -> None:
    url = f"https://{host()}/v1/*"
    uid = httpx.post(f"{running.url}/limits/capping", json=capping(url)).json()["uid"]
    edited = httpx.put(f"{running.url}/limits/rules/{uid}", json=capping(url, calls=20))
    assert edited.status_code == 200, edited.text
    new = edited.json()
    assert new["uid"] != uid and new["kind"] == "capping" and not new["deployed"]
    assert new["rule"]["services"]["action"]["rating"]["maxCallsCount"] == 20
    assert httpx.get(f"{running.url}/limits/rules/{uid}").status_code == 404
    assert httpx.get(f"{running.url}/limits/rules/{new['uid']}").json() == new


def test_editing_is_refused_for_a_deployed_rule_and_for_bad_fields(running: RunningService) -> None:
    url = f"https://{host()}/v1/*"
    uid = httpx.post(f"{running.url}/limits/capping", json=capping(url)).json()["uid"]
    bad = httpx.put(f"{running.url}/limits/rules/{uid}", json=capping(url, calls=1))
    assert bad.status_code == 422
    assert [p["path"] for p in bad.json()["problems"]] == ["services.action.rating.maxCallsCount"]
    deployed = httpx.post(
        f"{running.url}/limits/rules/{uid}/deploy", headers={"content-type": "application/json"}
    )
    assert deployed.status_code == 200, deployed.text
    refused = httpx.put(f"{running.url}/limits/rules/{uid}", json=capping(url, calls=20))
    assert refused.status_code == 409
    assert "undeploy" in refused.json()["detail"]
    assert httpx.put(f"{running.url}/limits/rules/nope", json=capping(url)).status_code == 404


def test_the_put_route_is_in_the_openapi_document(running: RunningService) -> None:
    operation = httpx.get(f"{running.url}/openapi.json").json()["paths"]["/limits/rules/{uid}"]["put"]
    assert operation["operationId"] == "update_rule"
    assert {"200", "404", "409", "422"} <= set(operation["responses"])
    refs = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in refs} == {"CappingRule", "ThrottlingRule"}


def test_a_capping_rule_is_created_from_its_form_with_problems_at_their_fields(
    page: Page, running: RunningService
) -> None:
    url = f"https://{host()}/orders/*"
    page.goto(f"{running.url}/console/limits")
    # The form is generated from the schema: nested groups, one input per field, methods as choices.
    page.get_by_label("URL", exact=True).fill(url)
    calls = page.locator('[data-path="services.action.rating.maxCallsCount"] input')
    expect(calls).to_have_accessible_name("Max calls count")
    calls.fill("1")  # the schema asks for more than 1
    page.get_by_role("button", name="Create").click()
    expect(calls).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-path="services.action.rating.maxCallsCount"] .field-error')).to_contain_text(
        "greater than 1"
    )
    assert url not in rules_by_url(running.url)

    calls.fill("50")
    page.get_by_role("group", name="Methods").get_by_label("GET").check()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#rules-table")).to_contain_text(url)
    stored = rules_by_url(running.url)[url]
    assert stored["kind"] == "capping" and not stored["deployed"]
    assert stored["rule"]["methods"] == ["GET", "POST", "PUT"]
    assert stored["rule"]["services"] == {"action": {"rating": {"maxCallsCount": 50, "periodInMs": 1000}}}


def test_a_throttling_rule_is_created_edited_deployed_undeployed_and_deleted(
    browser: Browser, running: RunningService
) -> None:
    url = f"https://{host()}/v2/*"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{running.url}/console/limits")
        page.get_by_label("Kind").select_option("throttling")
        page.get_by_label("URL pattern", exact=True).fill(url)
        page.get_by_label("Max throughput").fill("300")
        assert serious_violations(page) == []
        page.get_by_role("button", name="Create").click()
        row = page.locator("#rules-table tr", has_text=url)
        expect(row).to_contain_text("300 calls/s")
        uid = rules_by_url(running.url)[url]["uid"]

        row.get_by_role("button", name="Edit").click()
        expect(page.get_by_label("Kind")).to_be_disabled()
        expect(page.get_by_label("URL pattern", exact=True)).to_have_value(url)
        page.get_by_label("Max throughput").fill("400")
        assert serious_violations(page) == []
        page.get_by_role("button", name="Save").click()
        expect(row).to_contain_text("400 calls/s")
        edited = rules_by_url(running.url)[url]
        assert edited["uid"] != uid and edited["rule"]["maxThroughput"] == 400

        row.get_by_role("button", name="Deploy").click()
        expect(row).to_contain_text("deployed")
        expect(row.get_by_role("button", name="Edit")).to_be_disabled()
        assert rules_by_url(running.url)[url]["deployed"]
        row.get_by_role("button", name="Undeploy").click()
        expect(row.get_by_role("button", name="Edit")).to_be_enabled()
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Delete").click()
        expect(row).to_have_count(0)
    finally:
        context.close()
    assert errors == []
    assert url not in rules_by_url(running.url)


def test_the_preview_route_evaluates_mappings_with_the_sandboxed_expressions(running: RunningService) -> None:
    body = {
        "mappings": {
            "params": {"email": "{{ profile.firstName | upper }}@example.com", "count": 3},
            "headers": {"X-Missing": "{{ profile.nothing.deeper }}"},
            "query": {"escape": "{{ ''.__class__.__mro__ }}"},
        },
        "profile": {"firstName": "Ada"},
    }
    answer = httpx.post(f"{running.url}/journeys/preview", json=body)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["values"] == {"params": {"email": "ADA@example.com", "count": 3}}
    assert set(preview["errors"]) == {"headers", "query"}
    assert "nothing" in preview["errors"]["headers"]["X-Missing"]
    refused = httpx.post(f"{running.url}/journeys/preview", json={"mappings": {}, "profil": {}})
    assert refused.status_code == 422
    operation = httpx.get(f"{running.url}/openapi.json").json()["paths"]["/journeys/preview"]["post"]
    assert operation["operationId"] == "preview_mappings"
    assert {"200", "422"} <= set(operation["responses"])


def test_a_stored_journey_is_edited_in_the_editor_with_a_real_preview(
    browser: Browser, running: RunningService, recorder: Any
) -> None:
    add_action(running.url, recorder.url, "editedStep")
    journey_id = f"edit-{uuid.uuid4().hex[:8]}"
    node = {
        "id": "first",
        "action": "editedStep",
        "mappings": {"params": {"email": "{{ profile.email }}"}},
        "timeoutBranch": True,
    }
    created = httpx.post(
        f"{running.url}/journeys", json={"id": journey_id, "name": "Before the edit", "nodes": [node]}
    )
    assert created.status_code == 201, created.text
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{running.url}/console/journeys")
        page.get_by_role("link", name="Edit Before the edit").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Edit Before the edit")
        expect(page.get_by_label("Name", exact=True)).to_have_value("Before the edit")
        expect(page.locator("#j-id")).to_have_value(journey_id)
        email = page.get_by_label("Email")
        expect(email).to_have_value("{{ profile.email }}")
        expect(page.locator(".node-preview")).to_have_text('email = "ada@example.com"')
        # The preview is the runtime's: filters apply, and a mistake is told as the runtime tells it.
        email.fill("{{ profile.firstName | upper }}@example.com")
        expect(page.locator(".node-preview")).to_have_text('email = "ADA@example.com"')
        email.fill("{{ profile.nickname }}")
        expect(page.locator(".node-preview")).to_contain_text("email: ")
        expect(page.locator(".node-preview")).to_contain_text("nickname")
        assert serious_violations(page) == []

        email.fill("{{ profile.firstName | lower }}@example.com")
        page.get_by_label("Name", exact=True).fill("After the edit")
        page.get_by_role("button", name="Save as draft").click()
        page.wait_for_url(f"**/console/journeys?saved={journey_id}*")
    finally:
        context.close()
    assert errors == []
    journey = httpx.get(f"{running.url}/journeys/{journey_id}").json()["journey"]
    assert journey["name"] == "After the edit" and journey["status"] == "draft"
    assert journey["nodes"] == [
        {
            **node,
            "mappings": {
                "params": {"email": "{{ profile.firstName | lower }}@example.com"},
                "headers": {},
                "query": {},
                "path": None,
            },
            "timeout": None,
        }
    ]


def test_editing_an_unknown_journey_is_a_not_found_page(page: Page, running: RunningService) -> None:
    answer = httpx.get(f"{running.url}/console/journeys/nowhere/edit")
    assert answer.status_code == 404
    assert "nowhere" in answer.text
