"""A recent call's details from the action's pane, in a real browser (Debian's Chromium driven by
Playwright): the Recent calls rows are buttons a keyboard reaches, and one opens a dialog with
what went out (credentials masked) and what came back, attempt by attempt."""

# ruff: noqa: F811  (the browser fixtures are imported from test_service_console)

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from test_console_feedback import serious_violations
from test_service_console import RunningService, browser, running  # noqa: F401  (fixtures)

SENTINEL = "s3ntinel-Bearer-Token-77"


@pytest.fixture(scope="module")
def flaky() -> Iterator[str]:
    """A loopback endpoint answering 503 (Retry-After: 0) to every other request, else 200."""
    seen = {"count": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                seen["count"] += 1
                busy = seen["count"] % 2 == 1
            answer = json.dumps({"error": "busy"} if busy else {"ok": True}).encode()
            self.send_response(503 if busy else 200)
            if busy:
                self.send_header("retry-after", "0")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_recent_call_in_the_pane_opens_its_details_with_the_token_masked(
    browser: Browser, running: RunningService, flaky: str
) -> None:
    document = {
        "name": "loyaltySync",
        "endpoint": {"url": f"{flaky}/v1/loyalty", "method": "POST"},
        "authentication": {"type": "bearer", "token": SENTINEL},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
    }
    with httpx.Client(base_url=running.url) as client:
        assert client.post("/actions", json=document).status_code == 201
        call_id = client.post(
            "/actions/loyaltySync/invoke", json={"params": {"email": "a@example.com"}}
        ).json()["callId"]
    # The console's CSP allows only its own scripts: this context lets axe-core in.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{running.url}/console/actions/loyaltySync")
        opener = page.locator(f'#pane-calls button.call-link[data-call-id="{call_id}"]')
        expect(opener).to_be_visible()
        row = page.locator(f'#pane-calls tr[data-call-id="{call_id}"]')
        expect(row).to_contain_text("invoke")
        expect(row).to_contain_text("http_200")
        # By keyboard: the row's time is a button.
        opener.focus()
        page.keyboard.press("Enter")
        dialog = page.locator("#call-dialog")
        expect(dialog).to_be_visible()
        page.wait_for_selector(f'body[data-call-shown="{call_id}"]')
        shown = dialog.inner_text()
        assert call_id in shown
        assert "loyaltySync: http_200, 2 attempt(s)" in shown
        assert "bodies are not recorded" in shown
        assert shown.count(f"POST {flaky}/v1/loyalty") == 2  # method and URL of each attempt
        assert re.search(r"^authorization: \*\*\*$", shown, re.IGNORECASE | re.MULTILINE), shown
        assert "answered 503" in shown and "answered 200" in shown
        assert "Retried because the endpoint answered 503." in shown
        assert SENTINEL not in page.content()  # nowhere in the page, dialog included
        assert serious_violations(page) == []  # with the dialog open
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(opener).to_be_focused()  # back where the keyboard was, the pane still open
        assert page.url.endswith("/console/actions/loyaltySync")
    finally:
        context.close()
    assert errors == [], errors


def test_a_sent_test_request_appears_in_recent_calls_and_opens_its_details(
    browser: Browser, running: RunningService, flaky: str
) -> None:
    document = {
        "name": "pingFlaky",
        "endpoint": {"url": f"{flaky}/v1/ping", "method": "POST"},
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
    }
    with httpx.Client(base_url=running.url) as client:
        assert client.post("/actions", json=document).status_code == 201
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{running.url}/console/actions/pingFlaky")
        expect(page.locator("#pane-calls")).to_be_hidden()  # no call yet
        page.fill('[data-test-group="params"][data-test-key="email"]', "b@example.com")
        page.click("#send-test")
        opener = page.locator("#pane-calls button.call-link")
        expect(opener).to_have_count(1)
        expect(page.locator("#pane-calls tbody tr")).to_contain_text("test")
        opener.click()
        page.wait_for_selector("body[data-call-shown]")
        assert "pingFlaky: http_200, 2 attempt(s)" in page.inner_text("#call-dialog")
        page.click("#call-dialog-close")
        expect(page.locator("#call-dialog")).to_be_hidden()
    finally:
        context.close()
