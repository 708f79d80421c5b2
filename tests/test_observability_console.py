"""The Monitoring page in a real browser (Debian's Chromium driven by Playwright), after a burst
of calls: the numbers the charts are drawn from, and a recent call's details; and the
`Timeline` and `QueueTimeline` behind it on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from observability_console import CHROMIUM, CHROMIUM_ARGS, burst, start_partner, start_service
from playwright.sync_api import Page, sync_playwright

from actionrt.fleet.engine import QueueDepth
from actionrt.observability.queue_timeline import QueueTimeline
from actionrt.observability.timeline import Timeline
from actionrt.service.queue_watch import QueueWatch


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
        assert errors == [], errors  # no JavaScript error


def chart(page: Page, canvas: str) -> dict[str, Any]:
    """What a chart draws: its labels and datasets, read from Chart.js itself."""
    data: dict[str, Any] = page.evaluate(
        """(id) => { const c = Chart.getChart(id);
                     return {labels: c.data.labels,
                             datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}; }""",
        canvas,
    )
    return data


def totals(drawn: dict[str, Any]) -> dict[str, float]:
    return {d["label"]: sum(v for v in d["data"] if v is not None) for d in drawn["datasets"]}


def test_monitoring_draws_the_burst_overall_and_per_action(page: Page, tmp_path: Path) -> None:
    partner = start_partner()
    service = start_service(tmp_path)
    try:
        partner_url = f"http://127.0.0.1:{partner.server_address[1]}"
        burst(service.url, partner_url, {"notify": ("/ok", 6), "lookup": ("/missing", 3)})
        page.goto(f"{service.url}/console/monitoring")
        page.wait_for_selector("body[data-monitoring-loaded='1']")
        calls = chart(page, "calls-chart")
        assert len(calls["labels"]) == 60  # the last hour, one bar a minute
        assert totals(calls) == {"http_200": 6, "http_404": 3}
        assert chart(page, "errors-chart") == {
            "labels": ["http/404"],
            "datasets": [{"label": "calls", "data": [3]}],
        }
        assert totals(chart(page, "limits-chart")) == {"capped": 0, "throttled": 0}
        latency = chart(page, "latency-chart")
        assert [d["label"] for d in latency["datasets"]] == ["p50", "p95", "p99"]
        assert all(totals(latency)[name] > 0 for name in ("p50", "p95", "p99"))
        assert page.inner_text("#mon-total") == "9" and page.inner_text("#mon-failed") == "3"

        page.select_option("#mon-action", "lookup")
        page.wait_for_selector("body[data-monitoring-loaded='2']")
        assert totals(chart(page, "calls-chart")) == {"http_404": 3}
        # recent calls of that action; a click shows what went out and what came back
        rows = page.locator("#recent-calls tbody tr[data-call-id]")
        page.wait_for_function(
            "document.querySelectorAll('#recent-calls tbody tr[data-call-id]').length === 3"
        )
        assert set(rows.all_inner_texts()) == {t for t in rows.all_inner_texts() if "lookup\thttp_404" in t}
        rows.first.click()
        page.wait_for_selector("#call-details:not([hidden])")
        details = page.inner_text("#call-details")
        assert "lookup: http_404, 1 attempt(s)" in details
        assert f"POST {partner_url}/missing" in details and "answered 404" in details
        assert "bodies are not recorded" in details
        page.select_option("#mon-window", "day")
        page.wait_for_selector("body[data-monitoring-loaded='3']")
        day = chart(page, "calls-chart")
        assert len(day["labels"]) == 96 and totals(day) == {"http_404": 3}
        with httpx.Client(base_url=service.url) as client:
            assert client.get("/monitoring/calls?window=week").status_code == 422
    finally:
        service.stop()
        partner.shutdown()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(status: str, elapsed: float, *, queued: float = 0.0, action: str = "a") -> dict[str, Any]:
    ok = status.startswith("http_2")
    code = None if ok else status.removeprefix("http_")
    error_class = None if ok else ("http" if status.startswith("http_") else "capping")
    return {
        "action": action,
        "status": status,
        "ok": ok,
        "errorClass": error_class,
        "errorCode": code,
        "elapsed": elapsed,
        "queuedSeconds": queued,
    }


def test_the_timeline_steps_quantiles_and_forgets_after_a_day() -> None:
    clock = Clock(1_800_000_000.0)
    timeline = Timeline(clock=clock)
    for elapsed in (0.010, 0.020, 0.030, 0.040, 1.0):
        timeline.emit(event("http_200", elapsed))
    timeline.emit(event("capped", 0.0))
    timeline.emit(event("http_200", 0.01, queued=0.5, action="b"))
    clock.now += 120  # two minutes later
    timeline.emit(event("http_503", 0.2))
    hour = timeline.series("hour", "a")
    assert hour["calls"]["http_200"][-3] == 5 and hour["calls"]["http_503"][-1] == 1
    assert hour["capped"][-3] == 1 and hour["errors"] == {"capping/capped": 1, "http/503": 1}
    p50, p99 = hour["latency"]["p50"][-3], hour["latency"]["p99"][-3]
    assert 0.020 <= p50 <= 0.020 * 1.25 and 1.0 <= p99 <= 1.25  # within one bucket above
    assert hour["latency"]["p50"][-2] is None  # no call that minute
    overall = timeline.series("hour")
    assert overall["total"] == 8 and overall["throttled"][-3] == 1
    day = timeline.series("day")
    assert len(day["times"]) == 96 and day["step"] == 900 and day["total"] == 8
    clock.now += 25 * 3600
    timeline.emit(event("http_200", 0.01))
    assert timeline.series("day", "a")["total"] == 1
    assert len(timeline._minutes["a"]) == 1  # the day-old minutes are forgotten, not only hidden
    with pytest.raises(ValueError, match="window must be one of hour, day"):
        timeline.series("week")  # type: ignore[arg-type]


def test_a_latency_counts_in_the_first_bucket_whose_bound_reaches_it() -> None:
    from actionrt.observability.timeline import LATENCY_BOUNDS

    def p50(elapsed: float | None) -> float | None:
        timeline = Timeline(clock=Clock(1_800_000_000.0))
        timeline.emit(event("http_200", elapsed))  # type: ignore[arg-type]
        return timeline.series("hour", "a")["latency"]["p50"][-1]

    bound = LATENCY_BOUNDS[10]
    assert p50(bound) == round(bound, 6) and p50(bound * 1.01) == round(LATENCY_BOUNDS[11], 6)
    assert p50(0.0) == p50(None) == p50(0.0005) == 0.001
    assert p50(1e6) == round(LATENCY_BOUNDS[-1], 6)  # past the last bound: the last bucket


def test_the_queue_timeline_keeps_a_minutes_last_reading_and_a_steps_deepest() -> None:
    clock = Clock(1_800_000_000.0)  # a multiple of 900: the first minute of a 15-minute step
    timeline = QueueTimeline(clock=clock)
    assert timeline.series("hour")["last"] is None and timeline.series("hour")["waiting"] == [None] * 60
    timeline.record("default", 7, 0)
    clock.now += 30
    timeline.record("default", 4, 1)  # same minute: the last reading stands
    clock.now += 60
    timeline.record("default", 2, 1)
    clock.now += 120  # a minute without a reading in between
    timeline.record("default", 0, 1)
    hour = timeline.series("hour")
    assert hour["queue"] == "default" and hour["step"] == 60
    assert hour["waiting"][-4:] == [4, 2, None, 0] and hour["dead"][-4:] == [1, 1, None, 1]
    assert hour["last"] == {"at": clock.now, "waiting": 0, "dead": 1}
    assert hour["times"][-1] == int(clock.now // 60) * 60
    day = timeline.series("day")
    assert len(day["waiting"]) == 96 and day["waiting"][-1] == 4 and day["dead"][-1] == 1
    assert day["waiting"][:-1] == [None] * 95
    clock.now += 25 * 3600
    timeline.record("default", 3, 2)
    assert len(timeline._minutes) == 1  # the day-old minutes are forgotten, not only hidden
    assert timeline.series("day")["waiting"][-1] == 3
    with pytest.raises(ValueError, match="window must be one of hour, day"):
        timeline.series("week")  # type: ignore[arg-type]


async def test_the_queue_watch_reads_in_the_background_until_closed() -> None:
    readings = asyncio.Queue[int]()
    served = 0

    async def depth() -> QueueDepth:
        nonlocal served
        served += 1
        readings.put_nowait(served)
        return QueueDepth("default", served, 0)

    watch = QueueWatch(lambda: depth)
    watch.start(interval=0)
    while await readings.get() < 3:  # each reading is announced; no timing assumed
        pass
    await watch.aclose()
    assert watch.timeline.series("hour")["last"]["waiting"] >= 3  # type: ignore[index]
    stopped = served
    assert readings.qsize() == stopped - 3 and watch._task is None
    assert await QueueWatch(lambda: None).sample() is False  # no fleet: nothing to read


def test_a_result_counts_as_its_step_event_does() -> None:
    from actionrt.results import InvocationResult

    def result(status: str, elapsed: float, **fields: Any) -> InvocationResult:
        values: dict[str, Any] = dict(
            action="a", status=status, ok=status == "http_200", http_status=None, response=None,
            error_response=None, attempts=1, error=None, error_class=None, error_code=None,
            origin_error_class=None, origin_error_code=None, elapsed=elapsed, queued_seconds=0.0,
            endpoint="https://partner.example/v1", method="POST",
        )  # fmt: skip
        return InvocationResult.made(**{**values, **fields})

    results = [
        result("http_200", 0.012),
        result("http_200", 0.4, queued_seconds=0.25, action="b"),
        result("http_503", 1.5, error_class="http", error_code="503"),
        result("capped", 0.0, error_class="capping", error_code="capped", attempts=0),
        result("timedout", 10.0, error_class="timeout"),
        result("internalError", 0.001),
    ]
    by_event, by_result = Timeline(clock=Clock(1_800_000_000.0)), Timeline(clock=Clock(1_800_000_000.0))
    for each in results:
        by_event.emit(each.as_event())
        by_result.count(each)
    for action in (None, "a", "b"):
        for window in ("hour", "day"):
            assert by_result.series(window, action) == by_event.series(window, action)  # type: ignore[arg-type]
    assert by_result.series("hour")["errors"] == {
        "http/503": 1,
        "capping/capped": 1,
        "timeout/timedout": 1,
        "error/internalError": 1,
    }
