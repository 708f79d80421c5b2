"""Take the console screenshots of docs/service.md: `uv run python tests/service/screenshots.py docs/img`.

Runs the service on a temporary store (examples loaded) and a loopback endpoint, then drives
Debian's Chromium through the pane as the browser test does. Not collected by pytest.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from playwright.sync_api import Page, sync_playwright
from test_service_console import CHROMIUM, CHROMIUM_ARGS, start_recorder, start_service


def form(page: Page, path: Path) -> None:
    """The configuration form of the pane, from its head to its last field."""
    page.eval_on_selector("#f-sample", "e => { e.scrollTop = 0; }")
    box = page.locator("#action-form").bounding_box()
    assert box is not None
    margin = 16
    clip = {
        "x": box["x"] - margin,
        "y": box["y"],
        "width": box["width"] + 2 * margin,
        "height": box["height"] + margin,
    }
    page.screenshot(path=str(path), clip=clip)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    running = start_service(Path(tempfile.mkdtemp()))
    recorder = start_recorder()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(f"{running.url}/console/actions")
        page.screenshot(path=str(out / "service-actions.png"))

        page.click("#add-action")
        page.fill("#f-name", "order shipped!")
        page.fill("#f-description", "Tell the customer their order has shipped")
        page.fill("#f-url", f"{recorder.url}/v1/notifications")
        page.select_option("#f-auth-type", "apiKey")
        page.fill("#f-apikey-name", "x-api-key")
        page.fill("#f-apikey-value", "k-123-secret")
        sample = {
            "customer": {"email": "ada@example.com", "firstName": "Ada"},
            "orderId": 1042,
            "items": [{"sku": "A-1", "qty": 2}],
        }
        page.fill("#f-sample", json.dumps(sample, indent=2))
        page.dispatch_event("#f-sample", "change")
        for field, label in (("customer.email", "Email"), ("orderId", "Order number")):
            row = page.locator(f'tr[data-field="{field}"]')
            row.locator("select.kind").select_option("variable")
            row.locator("input.value").fill(label)
        page.locator('tr[data-field="customer.firstName"] select.kind').select_option("variable")
        page.locator('tr[data-field="customer.firstName"] input.optional').check()
        page.fill("#f-response", json.dumps({"messageId": "m-0", "status": "sent"}, indent=2))
        page.click("#save-action")
        page.locator('.field[data-path="name"] .field-error').wait_for()
        page.set_viewport_size({"width": 1400, "height": 2200})
        form(page, out / "service-add-pane.png")

        page.fill("#f-name", "orderShipped")
        page.click("#save-action")
        page.wait_for_url("**/console/actions/orderShipped?saved=1")
        page.fill('[data-test-group="params"][data-test-key="customer.email"]', "grace@example.com")
        page.fill('[data-test-group="params"][data-test-key="orderId"]', "1043")
        page.click("#send-test")
        page.locator("#test-status").wait_for()
        box = page.locator("#test-section").bounding_box()
        assert box is not None
        clip = {"x": box["x"] - 16, "y": box["y"], "width": box["width"] + 32, "height": box["height"]}
        page.screenshot(path=str(out / "service-test-request.png"), clip=clip)
        page.locator("#pane-calls button.call-link").first.click()  # the test request just sent
        page.wait_for_selector("body[data-call-shown]")
        page.locator("#call-dialog").screenshot(path=str(out / "service-call-details.png"))
        page.keyboard.press("Escape")

        page.goto(f"{running.url}/console/actions/loyaltyUpdate")
        form(page, out / "service-read-only.png")

        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{running.url}/console/journeys/new")
        page.get_by_label("Name", exact=True).fill("Order follow-up")
        page.get_by_label("Action to add").select_option("orderShipped")
        page.get_by_role("button", name="Add the action").click()
        page.get_by_label("Email").fill("{{ profile.email }}")
        page.get_by_label("Order number").fill("{{ event.orderId }}")
        page.screenshot(path=str(out / "service-journey-editor.png"))

        page.set_viewport_size({"width": 1024, "height": 768})
        page.goto(f"{running.url}/console/actions/orderShipped")
        page.screenshot(path=str(out / "service-narrow.png"))
        browser.close()
    running.server.should_exit = True
    running.thread.join()
    assert recorder.server is not None
    recorder.server.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
