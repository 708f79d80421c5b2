"""The service on a free loopback port and a threaded loopback partner, for the Monitoring page's
browser test and its screenshot (`uv run python tests/observability_console.py docs/img`; the
screenshot's service has a fleet queue on the local Redis, with calls no worker took)."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from threaded_server import ThreadedServer, serve_in_thread

from actionrt.service.app import create_app

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


def start_partner() -> ThreadingHTTPServer:
    """Answers /ok 200 and anything else 404, on its own thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            answer = json.dumps({"ok": self.path.startswith("/ok")}).encode()
            self.send_response(200 if self.path.startswith("/ok") else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_service(folder: Path, **options: Any) -> ThreadedServer:
    application = create_app(
        folder / "store.db",
        allow_private_network=True,
        secret_key=Fernet.generate_key(),
        entry_points=False,
        **options,
    )
    return serve_in_thread(application)


def burst(service: str, partner: str, calls: dict[str, tuple[str, int]]) -> None:
    """Create each action (name -> (path, count)) and invoke it `count` times."""
    with httpx.Client(base_url=service, timeout=30) as client:
        for name, (path, count) in calls.items():
            document = {
                "name": name,
                "endpoint": {"url": partner + path, "method": "POST"},
                "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
            }
            assert client.post("/actions", json=document).status_code == 201
            for _ in range(count):
                client.post(f"/actions/{name}/invoke", json={"params": {"email": "a@example.com"}})


SCREENSHOT_QUEUE = "monitoring-screenshot"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def queue_depth() -> Any:
    from actionrt.fleet import Queue

    async with Queue(REDIS_URL, name=SCREENSHOT_QUEUE) as queue:
        return await queue.depth()


async def queue_calls(count: int) -> None:
    from actionrt.fleet import Queue

    async with Queue(REDIS_URL, name=SCREENSHOT_QUEUE) as queue:
        for n in range(count):
            await queue.submit("loyaltyUpdate", {"n": n})


def forget_queue() -> None:
    import redis

    from actionrt.fleet.redis_streams import QueueKeys

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=QueueKeys(SCREENSHOT_QUEUE).base + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def main(out: Path) -> None:
    import asyncio

    from playwright.sync_api import sync_playwright

    partner = start_partner()
    service = start_service(Path(tempfile.mkdtemp()), queue_depth=queue_depth)
    partner_url = f"http://127.0.0.1:{partner.server_address[1]}"
    forget_queue()
    try:
        burst(service.url, partner_url, {"loyaltyUpdate": ("/ok", 40), "crmLookup": ("/missing", 7)})
        asyncio.run(queue_calls(12))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1560})
            page.goto(f"{service.url}/console/monitoring")
            page.wait_for_selector("body[data-monitoring-loaded]")
            page.locator("#recent-calls tbody tr", has_text="crmLookup").first.click()
            page.wait_for_selector("#call-details:not([hidden])")
            page.screenshot(path=str(out / "monitoring.png"))
            browser.close()
    finally:
        service.stop()
        partner.shutdown()
        forget_queue()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
