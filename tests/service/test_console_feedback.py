"""The console's feedback in Chromium against a real service: Send test request busy while its
call runs (one request for a double-click), network failures shown in the page, input mistakes
at their fields with aria-invalid, closing with unsaved edits, the layout at 1024×768, an empty
search, and axe-core's check of every page."""

# ruff: noqa: F811  (the browser fixtures are imported from test_service_console)

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_service_console import (  # noqa: F401  (fixtures)
    RunningService,
    browser,
    page,
    recorder,
    running,
    start_service,
)

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WAIT = 10.0  # seconds a thread waits on the browser's request before the test fails


@dataclass
class SlowStandIn:
    """A loopback partner that holds every request until `release` is set."""

    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    bodies: list[Any] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def slow() -> Iterator[SlowStandIn]:
    stand_in = SlowStandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            stand_in.bodies.append(json.loads(self.rfile.read(length) or b"null"))
            stand_in.arrived.set()
            stand_in.release.wait(WAIT)
            answer = b'{"messageId": "m-slow"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    stand_in.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=stand_in.server.serve_forever, daemon=True).start()
    yield stand_in
    stand_in.release.set()
    stand_in.server.shutdown()


def add_action(url: str, base: str, name: str, **extra: Any) -> None:
    document = {
        "name": name,
        "endpoint": {"url": f"{base}/notes", "method": "POST"},
        "request": {"sample": {"email": "ada@example.com"}, "variables": {"email": {"label": "Email"}}},
        **extra,
    }
    answer = httpx.post(f"{url}/actions", json=document)
    assert answer.status_code == 201, answer.text


def test_send_test_request_is_busy_while_its_call_runs_and_a_double_click_sends_once(
    page: Page, running: RunningService, slow: SlowStandIn
) -> None:
    add_action(running.url, slow.url, "slowPartner")
    page.goto(f"{running.url}/console/actions/slowPartner")
    page.fill('[data-test-group="params"][data-test-key="email"]', "ada@example.com")
    slow.release.set()
    page.click("#send-test")
    expect(page.locator("#test-status")).to_contain_text("http_200")

    slow.release.clear()
    slow.arrived.clear()
    page.dblclick("#send-test")
    assert slow.arrived.wait(WAIT), "the test request never reached the partner"
    button = page.locator("#send-test")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Sending…")
    expect(page.locator("#check-auth")).to_be_disabled()
    expect(page.locator("#test-progress")).to_be_visible()
    expect(page.locator("#test-result")).to_be_hidden()  # the previous result is not left on screen
    expect(page.locator("#test-section")).to_have_attribute("aria-busy", "true")

    slow.release.set()
    expect(page.locator("#test-status")).to_contain_text("http_200")
    expect(button).to_be_enabled()
    expect(button).to_have_text("Send test request")
    expect(page.locator("#call-counts")).to_contain_text("http_200 × 2")
    assert len(slow.bodies) == 2  # one for the first click, one for the double-click


def test_a_required_test_variable_left_empty_is_shown_at_its_input_and_makes_no_call(
    page: Page, running: RunningService, recorder: Any
) -> None:
    add_action(running.url, recorder.url, "needsEmail")
    page.goto(f"{running.url}/console/actions/needsEmail")
    before = len(recorder.requests)
    page.click("#send-test")
    email = page.locator('[data-test-group="params"][data-test-key="email"]')
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(page.locator("#test-form .field.invalid .field-error")).to_have_text(
        "required: give a value to send"
    )
    expect(page.locator("#test-result")).to_be_hidden()
    expect(page.locator("#call-counts")).to_have_text("none yet")
    assert len(recorder.requests) == before

    email.fill("ada@example.com")
    page.click("#send-test")
    expect(page.locator("#test-status")).to_contain_text("http_200")
    expect(email).not_to_have_attribute("aria-invalid", "true")


def test_save_and_send_with_the_service_stopped_show_an_error_in_the_page(
    browser: Browser, tmp_path: Path
) -> None:
    service = start_service(tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{service.url}/console/actions/epsilonSendEmail")
        page.fill("#f-description", "edited while the service is down")
        service.server.should_exit = True
        service.thread.join(timeout=WAIT)
        assert not service.thread.is_alive()

        page.click("#save-action")
        error = page.locator("#form-error")
        expect(error).to_be_visible()
        expect(error).to_have_text(
            "Not saved. Could not reach the service: check that it is running and try again."
        )
        expect(page.locator("#save-action")).to_be_enabled()

        page.fill('[data-test-key="recipient.email"]', "ada@example.com")
        page.click("#send-test")
        expect(page.locator("#test-status")).to_have_text(
            "Not sent: Could not reach the service: check that it is running and try again."
        )
        expect(page.locator("#send-test")).to_be_enabled()
    finally:
        context.close()


def test_an_empty_label_is_shown_at_its_row_with_aria_invalid(page: Page, running: RunningService) -> None:
    page.goto(f"{running.url}/console/actions/new")
    page.fill("#f-name", "emptyLabel")
    page.fill("#f-url", "https://api.example.com/v1/notes")
    page.fill("#f-sample", json.dumps({"ok": True, "email": "ada@example.com"}))
    page.dispatch_event("#f-sample", "change")
    row = page.locator('tr[data-field="email"]')
    row.locator("select.kind").select_option("variable")
    row.locator("input.value").fill("")

    page.click("#save-action")

    cell = row.locator("td.f-value")
    expect(cell.locator(".field-error")).to_have_text("a variable field needs a label")
    expect(cell).to_have_class(re.compile(r"\binvalid\b"))
    expect(row.locator("input.value")).to_have_attribute("aria-invalid", "true")
    expect(row.locator("input.value")).to_be_in_viewport()
    expect(page.locator("#form-error")).to_be_hidden()
    assert httpx.get(f"{running.url}/actions/emptyLabel").status_code == 404

    row.locator("input.value").fill("Email")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/emptyLabel?saved=1")


def test_close_and_escape_ask_before_throwing_away_unsaved_edits(page: Page, running: RunningService) -> None:
    page.goto(f"{running.url}/console/actions/epsilonSendEmail")
    page.keyboard.press("Escape")  # nothing edited: closes without asking
    page.wait_for_url("**/console/actions")

    page.goto(f"{running.url}/console/actions/epsilonSendEmail")
    page.fill("#f-description", "an edit not saved yet")
    asked: list[str] = []

    def keep_editing(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", keep_editing)
    page.keyboard.press("Escape")
    expect(page.locator("#f-description")).to_have_value("an edit not saved yet")
    assert asked == ["Discard your unsaved changes to this action?"]
    assert page.url.endswith("/console/actions/epsilonSendEmail")

    page.once("dialog", keep_editing)
    page.click("#close-pane")
    expect(page.locator("#f-description")).to_have_value("an edit not saved yet")
    assert len(asked) == 2

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#close-pane")
    page.wait_for_url("**/console/actions")
    expect(page.locator("#action-pane")).to_have_count(0)


def test_after_add_the_focus_is_in_name(page: Page, running: RunningService) -> None:
    page.goto(f"{running.url}/console/actions")
    page.click("#add-action")
    expect(page.locator("#f-name")).to_be_focused()


@pytest.mark.parametrize("width, height", [(1024, 768), (1280, 800)])
def test_the_list_and_the_open_pane_do_not_overlap(
    browser: Browser, running: RunningService, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{running.url}/console/actions/epsilonSendEmail")
        pane = page.locator("#action-pane").bounding_box()
        assert pane is not None
        shown = page.locator(".list-head > *, #actions-table th, #actions-table td")
        boxes = [box for box in (shown.nth(i).bounding_box() for i in range(shown.count())) if box]
        assert boxes, "nothing of the list is shown"
        for box in boxes:
            assert box["x"] >= 0 and box["x"] + box["width"] <= pane["x"] + 0.5, (box, pane)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()


def test_a_search_without_a_match_says_so(page: Page, running: RunningService) -> None:
    page.goto(f"{running.url}/console/actions")
    page.fill("#action-filter", "no-such-action-zz")
    expect(page.locator("#no-match")).to_be_visible()
    expect(page.locator("#no-match")).to_have_text('No action matches "no-such-action-zz".')
    page.fill("#action-filter", "epsilon")
    expect(page.locator("#no-match")).to_be_hidden()
    expect(page.locator('#actions-table tr[data-name="epsilonSendEmail"]')).to_be_visible()


def axe_script() -> Path:
    """axe-core's script, installed from the npm registry on first use (tests/service/package.json
    pins it), so `uv run pytest` on a fresh clone needs no separate step."""
    if not AXE.exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(AXE.parents[2]), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
        )
    return AXE


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    page.add_script_tag(path=str(axe_script()))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }))"""
    )
    return violations


@pytest.mark.parametrize(
    "path",
    [
        "/console/actions",
        "/console/actions/epsilonSendEmail",
        "/console/actions/new",
        "/console/journeys",
        "/console/journeys/new",
        "/console/limits",
        "/console/monitoring",
    ],
)
def test_axe_finds_no_serious_violation(browser: Browser, running: RunningService, path: str) -> None:
    # The console's CSP allows only its own scripts: the check's context lets axe-core in.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(running.url + path)
        assert serious_violations(page) == []
    finally:
        context.close()


def test_a_live_actions_sample_is_byte_identical_after_a_description_edit(
    page: Page, running: RunningService, recorder: Any
) -> None:
    sample = '{"zeta":1,"alpha":2,"mid":{"z":true,"a":null}}'
    document = {
        "name": "orderKept",
        "endpoint": {"url": f"{recorder.url}/notes", "method": "POST"},
        "request": {"sample": json.loads(sample), "variables": {"zeta": {"label": "Zeta"}}},
    }
    assert httpx.post(f"{running.url}/actions", json=document).status_code == 201
    journey = {
        "id": "orderKeptLive",
        "name": "Order kept",
        "status": "live",
        "nodes": [{"id": "n", "action": "orderKept", "mappings": {"params": {"zeta": "{{ profile.n }}"}}}],
    }
    assert httpx.post(f"{running.url}/journeys", json=journey).status_code == 201

    page.goto(f"{running.url}/console/actions/orderKept")
    expect(page.locator("#readonly-note")).to_contain_text("Order kept")
    page.fill("#f-description", "only the description changes")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/orderKept?saved=1")

    stored = httpx.get(f"{running.url}/actions/orderKept").json()["action"]
    assert stored["description"] == "only the description changes"
    assert json.dumps(stored["request"]["sample"], separators=(",", ":")) == sample


def test_a_refused_edit_is_told_in_the_panes_words_at_its_fields(
    page: Page, running: RunningService, recorder: Any
) -> None:
    add_action(running.url, recorder.url, "pinnedLater")
    page.goto(f"{running.url}/console/actions/pinnedLater")
    expect(page.locator("#f-method")).to_be_enabled()
    # While the pane is open, a journey using the action goes live.
    journey = {
        "id": "pinLive",
        "name": "Spring campaign",
        "status": "live",
        "nodes": [
            {"id": "n", "action": "pinnedLater", "mappings": {"params": {"email": "{{ profile.email }}"}}}
        ],
    }
    assert httpx.post(f"{running.url}/journeys", json=journey).status_code == 201

    page.select_option("#f-method", "PUT")
    page.fill("#f-sample", json.dumps({"email": "ada@example.com", "extra": 1}))
    page.dispatch_event("#f-sample", "change")
    expect(page.locator('tr[data-field="extra"]')).to_be_visible()
    page.click("#save-action")

    expect(page.locator("#form-error")).to_have_text(
        "Not saved: Method and Message parameters can't change while this action is used in the live "
        "journey “Spring campaign”. Undo those changes, or duplicate the action and change the copy."
    )
    method = page.locator('.field[data-path="endpoint.method"]')
    expect(method).to_have_class(re.compile(r"\binvalid\b"))
    expect(page.locator("#f-method")).to_have_attribute("aria-invalid", "true")
    expect(method.locator(".field-error")).to_have_text(
        "can't change while used in the live journey “Spring campaign”"
    )
    expect(page.locator('.field[data-path="request.sample"]')).to_have_class(re.compile(r"\binvalid\b"))
    assert httpx.get(f"{running.url}/actions/pinnedLater").json()["action"]["endpoint"]["method"] == "POST"


STORED = "•••••••• stored — type to replace"


def test_a_stored_secret_shows_one_way_everywhere_and_is_kept_when_left_empty(
    page: Page, running: RunningService, recorder: Any
) -> None:
    key = "K-live-7781-sealed"
    document = {
        "name": "sealedHeader",
        "endpoint": {
            "url": f"{recorder.url}/notes",
            "method": "POST",
            "headers": [{"name": "x-api-key", "value": key}],
        },
        "authentication": {"type": "basic", "username": "ada", "password": "pw-sealed-too"},
        "request": {"sample": {"note": "hi"}},
    }
    assert httpx.post(f"{running.url}/actions", json=document).status_code == 201
    page.goto(f"{running.url}/console/actions/sealedHeader")

    header_value = page.locator("#headers-table tr.param").nth(0).locator(".p-value")
    expect(header_value).to_have_value("")
    expect(header_value).to_have_attribute("type", "password")
    expect(header_value).to_have_attribute("placeholder", STORED)
    expect(page.locator("#f-basic-password")).to_have_attribute("placeholder", STORED)
    assert "secrets.console:" not in page.locator("#action-form").inner_text()
    test_section = page.locator("#test-section")
    expect(test_section).not_to_contain_text("endpoint.headers[0].value")
    expect(test_section).not_to_contain_text("authentication.password")
    expect(test_section.get_by_label("Header x-api-key")).to_have_attribute(
        "placeholder", "•••••••• stored — type to replace for this test"
    )

    page.fill("#f-description", "the key stays")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/sealedHeader?saved=1")
    page.click("#send-test")
    expect(page.locator("#test-status")).to_contain_text("http_200")
    assert recorder.requests[-1]["headers"]["x-api-key"] == key
    assert key not in page.content()


def test_every_auth_scheme_has_a_form_from_its_schema_with_required_fields_checked(
    page: Page, running: RunningService
) -> None:
    page.goto(f"{running.url}/console/actions/new")
    page.fill("#f-name", "bearerForm")
    page.fill("#f-url", "https://api.example.com/v1/notes")
    page.select_option("#f-auth-type", "bearer")
    token = page.get_by_label("Token", exact=True)
    expect(token).to_have_attribute("type", "password")
    page.click("#save-action")
    field = page.locator('.field[data-path="authentication.token"]')
    expect(field.locator(".field-error")).to_have_text("required")
    expect(token).to_have_attribute("aria-invalid", "true")
    assert httpx.get(f"{running.url}/actions/bearerForm").status_code == 404

    page.select_option("#f-auth-type", "oauth2ClientCredentials")
    expect(page.get_by_label("Token endpoint")).to_be_visible()
    expect(page.get_by_label("Client secret")).to_have_attribute("type", "password")
    expect(page.locator("#f-auth-clientAuthentication option")).to_have_text(
        ["(default: header)", "header", "body"]
    )

    page.select_option("#f-auth-type", "bearer")
    page.get_by_label("Token", exact=True).fill("tok-typed-once-991")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/bearerForm?saved=1")
    stored = httpx.get(f"{running.url}/actions/bearerForm").json()["action"]["authentication"]
    assert stored["type"] == "bearer" and "tok-typed-once-991" not in json.dumps(stored)
    expect(page.locator("#f-auth-token")).to_have_attribute("placeholder", STORED)
    assert "tok-typed-once-991" not in page.content()


def test_a_custom_scheme_form_hides_its_sealed_secrets_and_saves_them_unchanged(
    page: Page, running: RunningService
) -> None:
    page.goto(f"{running.url}/console/actions/epsilonSendEmail")
    values = page.eval_on_selector_all(
        "#auth-form-fields input, #auth-form-fields textarea", "els => els.map(e => e.value)"
    )
    assert not [v for v in values if "secrets.console:" in v]
    expect(page.locator("#f-auth-body")).to_have_value(
        re.compile(r'"password": "•••••••• stored secret \d+"')
    )
    expect(page.locator("#f-auth-authorizationType")).to_have_value("bearer")
    stored = httpx.get(f"{running.url}/actions/epsilonSendEmail").json()["action"]["authentication"]
    page.fill("#f-description", "auth kept through the form")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/epsilonSendEmail?saved=1")
    after = httpx.get(f"{running.url}/actions/epsilonSendEmail").json()["action"]["authentication"]
    assert {k: v for k, v in after.items() if k != "authorizationType"} == {
        k: v for k, v in stored.items() if k != "authorizationType"
    }
    assert (
        after.get("authorizationType", "bearer").lower() == stored.get("authorizationType", "bearer").lower()
    )


def test_a_journey_built_and_published_in_the_browser_is_live(
    browser: Browser, running: RunningService, recorder: Any
) -> None:
    add_action(running.url, recorder.url, "journeyStep")
    # bypass_csp lets axe-core in; the editor's own scripts are the console's.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{running.url}/console/journeys")
        page.get_by_role("link", name="New journey").click()
        page.get_by_label("Name", exact=True).fill("Browser-built welcome")
        expect(page.locator("#j-id")).to_have_value("Browser-built-welcome")
        page.get_by_label("Action to add").select_option("journeyStep")
        page.get_by_role("button", name="Add the action").click()
        email = page.get_by_label("Email")
        expect(email).to_be_focused()
        expect(page.locator(".journey-node label", has_text="Email")).to_contain_text("email")
        options = page.eval_on_selector_all("#j-expressions option", "os => os.map(o => o.value)")
        assert "{{ profile.email }}" in options
        email.fill("{{ profile.email }}")
        expect(page.locator(".node-preview")).to_have_text('email = "ada@example.com"')
        assert serious_violations(page) == []

        page.get_by_role("button", name="Publish").click()
        page.wait_for_url("**/console/journeys?saved=Browser-built-welcome*")
        expect(page.locator('tr[id="Browser-built-welcome"]')).to_contain_text("live")
    finally:
        context.close()
    assert errors == []
    listed = {j["id"]: j for j in httpx.get(f"{running.url}/journeys").json()["journeys"]}
    assert listed["Browser-built-welcome"]["status"] == "live"
    assert listed["Browser-built-welcome"]["actions"] == ["journeyStep"]
    journey = httpx.get(f"{running.url}/journeys/Browser-built-welcome").json()["journey"]
    assert journey["nodes"][0]["mappings"]["params"] == {"email": "{{ profile.email }}"}


def test_a_rule_is_deleted_from_the_rules_page_once_undeployed(page: Page, running: RunningService) -> None:
    rule = {
        "url": "https://rules-delete.example.com/v1/*",
        "methods": ["POST"],
        "services": {"action": {"maxCallsCount": 10, "periodInMs": 1000}},
    }
    created = httpx.post(f"{running.url}/limits/capping", json=rule)
    assert created.status_code == 201, created.text
    uid = created.json()["uid"]
    deployed = httpx.post(
        f"{running.url}/limits/rules/{uid}/deploy", headers={"content-type": "application/json"}
    )
    assert deployed.status_code == 200, deployed.text
    page.goto(f"{running.url}/console/limits")
    row = page.locator(f'tr[data-uid="{uid}"]')
    expect(row.locator(".rule-delete")).to_be_disabled()  # a deployed rule is undeployed first
    row.locator(".rule-toggle").click()
    expect(row.locator(".rule-delete")).to_be_enabled()
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator(".rule-delete").click()
    expect(row).to_have_count(0)
    assert httpx.get(f"{running.url}/limits/rules/{uid}").status_code == 404


def test_a_journey_is_published_and_stopped_from_the_journeys_list(
    page: Page, running: RunningService, recorder: Any
) -> None:
    add_action(running.url, recorder.url, "toggledStep")
    journey = {
        "id": "toggled",
        "name": "Toggled journey",
        "nodes": [
            {"id": "n", "action": "toggledStep", "mappings": {"params": {"email": "{{ profile.email }}"}}}
        ],
    }
    assert httpx.post(f"{running.url}/journeys", json=journey).status_code == 201
    page.goto(f"{running.url}/console/journeys")
    row = page.locator('tr[id="toggled"]')
    expect(row).to_contain_text("draft")
    page.get_by_role("button", name="Publish Toggled journey").click()
    expect(row).to_contain_text("live")
    assert httpx.get(f"{running.url}/journeys/toggled").json()["journey"]["status"] == "live"
    page.get_by_role("button", name="Stop Toggled journey").click()
    expect(row).to_contain_text("draft")
    assert httpx.get(f"{running.url}/journeys/toggled").json()["journey"]["status"] == "draft"
