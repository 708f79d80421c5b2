"""The Monitoring page of a service with a fleet, in a real browser (Debian's Chromium driven by
Playwright) over the real Redis: calls submitted to a queue no worker serves are the depth the
page shows and its chart is drawn from; a dead letter shows as one."""

# ruff: noqa: F811  (the browser fixture is imported from test_service_console)

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Page
from service_support import make_app
from test_console_feedback import serious_violations
from test_service_console import browser  # noqa: F401  (fixture)
from threaded_server import serve_in_thread

from actionrt.fleet import Queue
from actionrt.fleet.calls import failed_result
from actionrt.fleet.engine import QueueDepth
from actionrt.fleet.redis_streams import QueueKeys

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def queue_name() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=QueueKeys(name).base + "*"))  # only this test's: Redis is shared
    if keys:
        client.delete(*keys)
    client.close()


def run_apart(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `work()` to its end on an event loop of its own thread (Playwright's sync API holds
    this thread's loop)."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not failures, failures


def submit(name: str, count: int) -> None:
    async def go() -> None:
        async with Queue(REDIS_URL, name=name) as queue:
            for n in range(count):
                await queue.submit("ping", {"n": n})

    run_apart(go)


def dead_letter_one(name: str) -> None:
    """Take one call as a worker would and give it up."""

    async def go() -> None:
        async with Queue(REDIS_URL, name=name) as queue:
            engine = queue.engine
            await engine.prepare()
            (delivery,) = await engine.read("test-consumer", 1, 0.1)
            await engine.dead_letter(
                delivery, "given up", failed_result("ping", "given up", code="deadLettered")
            )

    run_apart(go)


def chart(page: Page, canvas: str) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate(
        """(id) => { const c = Chart.getChart(id);
                     return {labels: c.data.labels,
                             datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}; }""",
        canvas,
    )
    return data


def test_monitoring_shows_the_queue_depth_of_calls_no_worker_took(
    browser: Browser, queue_name: str, tmp_path: Path
) -> None:
    async def depth() -> QueueDepth:
        # The fleet's own reading; a client per reading keeps it on the service's event loop.
        async with Queue(REDIS_URL, name=queue_name) as queue:
            return await queue.depth()

    application = make_app(tmp_path, queue_depth=depth)
    served = serve_in_thread(application)
    url = served.url
    # The console's CSP allows only its own scripts: this context lets axe-core in.
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        submit(queue_name, 5)
        page.goto(f"{url}/console/monitoring")
        page.wait_for_selector("body[data-monitoring-loaded='1']")
        assert page.inner_text("#mon-queued") == "5" and page.inner_text("#mon-dead") == "0"
        drawn = chart(page, "queue-chart")
        assert len(drawn["labels"]) == 60  # the last hour, a point a minute
        waiting, dead = (d["data"] for d in drawn["datasets"])
        assert [d["label"] for d in drawn["datasets"]] == ["waiting", "dead letters"]
        assert waiting[-1] == 5 and dead[-1] == 0
        assert page.inner_text("#queue-caption") == f"Queue depth and dead letters (queue {queue_name})"
        assert serious_violations(page) == []

        dead_letter_one(queue_name)
        page.select_option("#mon-window", "day")  # a refresh reads the queue again
        page.wait_for_selector("body[data-monitoring-loaded='2']")
        assert page.inner_text("#mon-queued") == "4" and page.inner_text("#mon-dead") == "1"
        day = chart(page, "queue-chart")
        assert len(day["labels"]) == 96
        waiting, dead = (d["data"] for d in day["datasets"])
        # A 15-minute step shows its deepest minute: at least the reading just made.
        assert waiting[-1] >= 4 and dead[-1] == 1
    finally:
        context.close()
        served.stop()
    assert errors == [], errors
