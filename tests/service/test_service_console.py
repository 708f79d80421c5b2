"""The console in a real browser (Debian's Chromium driven by Playwright): add an action through
the pane, see a validation error at its field, fix it, save, find it in the list with Used in,
send a test request to a loopback server, and check that a typed secret is never shown again."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from service_support import make_app
from threaded_server import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "Pw-7f3c-typed-once"


@dataclass
class Recorder:
    """A loopback endpoint on its own thread: answers JSON, keeps what it received."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_recorder() -> Recorder:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            answer = json.dumps({"messageId": "m-42", "status": "queued"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    recorder.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=recorder.server.serve_forever, daemon=True).start()
    return recorder


@dataclass
class RunningService:
    url: str
    store: Path
    server: uvicorn.Server
    thread: threading.Thread


def start_service(tmp_path: Path) -> RunningService:
    """The service on a free loopback port, allowed to call loopback for the test request."""
    served = serve_in_thread(make_app(tmp_path, allow_private_network=True))
    return RunningService(served.url, tmp_path / "store.db", served.server, served.thread)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    service = start_service(tmp_path_factory.mktemp("console"))
    yield service
    service.server.should_exit = True
    service.thread.join(timeout=10)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    recorder = start_recorder()
    yield recorder
    assert recorder.server is not None
    recorder.server.shutdown()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], errors  # no JavaScript error on any page


def test_add_an_action_fix_its_name_save_it_and_send_a_test_request(
    page: Page, running: RunningService, recorder: Recorder
) -> None:
    page.goto(f"{running.url}/console/actions")
    page.click("#add-action")
    expect(page.locator("#action-pane h2")).to_have_text("Add an action")

    page.fill("#f-name", "bad name!")
    expect(page.locator("#name-rules")).to_have_class("hint broken")
    page.fill("#f-description", "Send a note")
    page.fill("#f-url", f"{recorder.url}/notes")
    page.select_option("#f-auth-type", "basic")
    page.fill("#f-basic-username", "ada")
    page.fill("#f-basic-password", SECRET)
    page.fill("#f-sample", json.dumps({"email": "ada@example.com", "count": 1}))
    page.dispatch_event("#f-sample", "change")
    email = page.locator('tr[data-field="email"]')
    email.locator("select.kind").select_option("variable")
    email.locator("input.value").fill("Email")

    page.click("#save-action")
    name_field = page.locator('.field[data-path="name"]')
    expect(name_field.locator(".field-error")).to_have_text("must be 1 to 30 letters, digits or '_'")
    expect(name_field).to_have_class("field invalid")

    page.fill("#f-name", "browserNotify")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/browserNotify?saved=1")
    row = page.locator('#actions-table tr[data-name="browserNotify"]')
    expect(row).to_contain_text("Send a note")
    expect(row.locator(".used-in")).to_have_text("0")

    # A journey starts using it: the list's Used in and the pane's View journeys show it.
    journey = {
        "id": "notes",
        "name": "Notes journey",
        "nodes": [
            {"id": "n", "action": "browserNotify", "mappings": {"params": {"email": "{{ profile.email }}"}}}
        ],
    }
    assert httpx.post(f"{running.url}/journeys", json=journey).status_code == 201
    page.reload()
    expect(row.locator(".used-in")).to_have_text("1")
    page.click("#view-journeys")
    expect(page.locator("#journey-list")).to_contain_text("Notes journey")

    page.fill('[data-test-group="params"][data-test-key="email"]', "grace@example.com")
    page.click("#send-test")
    expect(page.locator("#test-status")).to_contain_text("http_200")
    expect(page.locator("#test-body")).to_contain_text('"messageId": "m-42"')
    expect(page.locator("#call-counts")).to_contain_text("http_200 × 1")
    saved = httpx.get(f"{running.url}/actions/browserNotify").json()["action"]
    assert saved["request"]["variables"] == {"email": {"label": "Email"}}
    sent = recorder.requests[-1]
    assert sent["body"] == {"email": "grace@example.com", "count": 1}
    assert (
        base64.b64decode(sent["headers"]["Authorization"].removeprefix("Basic ")).decode() == f"ada:{SECRET}"
    )

    # The secret typed in is never shown again: not in the page, not in the API, not in the store.
    assert SECRET not in page.content()
    expect(page.locator("#f-basic-password")).to_have_value("")
    expect(page.locator("#f-basic-password")).to_have_attribute(
        "placeholder", "•••••••• stored — type to replace"
    )
    for path in ("/actions", "/actions/browserNotify", "/actions/browserNotify/calls"):
        assert SECRET not in httpx.get(running.url + path).text
    assert SECRET.encode() not in running.store.read_bytes()


def test_an_action_in_a_live_journey_is_read_only_but_its_description_saves(
    page: Page, running: RunningService
) -> None:
    page.goto(f"{running.url}/console/actions/epsilonSendEmail")
    expect(page.locator("#readonly-note")).to_contain_text("Used in a live journey (Welcome series)")
    expect(page.locator("#f-method")).to_be_disabled()
    expect(page.locator("#f-sample")).to_have_attribute("readonly", "")
    expect(page.locator('tr[data-field="sendAt"] select.kind')).to_be_disabled()
    expect(page.locator("#add-header")).to_be_disabled()
    page.fill("#f-description", "Send a transactional email (edited while live)")
    page.click("#save-action")
    page.wait_for_url("**/console/actions/epsilonSendEmail?saved=1")
    expect(page.locator(".notice")).to_have_text("epsilonSendEmail saved.")
    document = httpx.get(f"{running.url}/actions/epsilonSendEmail").json()["action"]
    assert document["description"] == "Send a transactional email (edited while live)"
    assert document["request"]["variables"]["sendAt"] == {
        "label": "Send at",
        "type": "dateTime",
        "optional": True,
    }


def test_a_test_request_without_a_response_example_does_not_claim_its_structure_matches(
    page: Page, running: RunningService, recorder: Recorder
) -> None:
    document = {
        "name": "noExample",
        "endpoint": {"url": f"{recorder.url}/plain", "method": "POST"},
        "request": {"sample": {"note": "hi"}},
    }
    assert httpx.post(f"{running.url}/actions", json=document).status_code == 201
    page.goto(f"{running.url}/console/actions/noExample")
    page.click("#send-test")
    expect(page.locator("#test-status")).to_have_text(
        re.compile(r"^http_200 · 1 attempt · \d+ ms · no response example to compare with$")
    )


def test_a_wrong_header_name_is_shown_at_its_cell(page: Page, running: RunningService) -> None:
    page.goto(f"{running.url}/console/actions")
    page.click("#add-action")
    page.fill("#f-name", "headerCheck")
    page.fill("#f-url", "https://api.example.com/v1/notes")
    page.click("#add-header")
    row = page.locator("#headers-table tr.param").nth(0)
    row.locator(".p-name").fill("$tenant")
    row.locator(".p-value").fill("acme")
    page.click("#add-header")
    unlabelled = page.locator("#headers-table tr.param").nth(1)
    unlabelled.locator(".p-name").fill("x-campaign")
    unlabelled.locator(".p-kind").select_option("variable")

    page.click("#save-action")

    name_cell = row.locator('[data-path="endpoint.headers[0].name"]')
    expect(name_cell.locator(".field-error")).to_have_text("must not start with '.' or '$'")
    expect(name_cell).to_have_class(re.compile(r"\binvalid\b"))
    expect(row.locator('[data-path="endpoint.headers[0].value"]')).not_to_have_class(
        re.compile(r"\binvalid\b")
    )
    label_cell = unlabelled.locator('[data-path="endpoint.headers[1].label"]')
    expect(label_cell.locator(".field-error")).to_have_text("a variable field needs a label")
    expect(label_cell).to_have_class(re.compile(r"\binvalid\b"))
    expect(unlabelled.locator('[data-path="endpoint.headers[1].name"]')).not_to_have_class(
        re.compile(r"\binvalid\b")
    )


def test_the_name_counter_stands_apart_from_the_rule_and_the_error(
    page: Page, running: RunningService
) -> None:
    # "... at most 30 characters. 14/30" followed by "must be 1 to 30 ..." read as one sentence.
    page.goto(f"{running.url}/console/actions/new")
    page.fill("#f-name", "bad name!")
    name_input = page.locator("#f-name").bounding_box()
    counter = page.locator("#name-count").bounding_box()
    assert name_input is not None and counter is not None
    assert abs((counter["x"] + counter["width"]) - (name_input["x"] + name_input["width"])) < 2
