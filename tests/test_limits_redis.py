"""The Redis backend against the real server on 127.0.0.1:6379: the same answers as in memory,
atomic and shared by several processes (4 processes, one cap, checked at an HTTP server)."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import socket
import threading
import time
import uuid
from bisect import bisect_right
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from actionrt.limits import Limits
from actionrt.limits.redis_backend import RedisBackend

REDIS_URL = "redis://127.0.0.1:6379/0"


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # not a skip: these tests are part of the suite
        raise RuntimeError(
            "the Redis tests need a server on 127.0.0.1:6379; start one with "
            "`redis-server --daemonize yes --port 6379 --save '' --appendonly no`"
        ) from exc


def _delete_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    _require_redis()
    value = f"actionrt:test:{uuid.uuid4().hex}:"
    yield value
    _delete_prefix(value)


@pytest.fixture
async def backend(prefix: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(REDIS_URL, prefix=prefix)
    yield backend
    await backend.aclose()


def capping(count: int, period_ms: int, url: str = "https://api.partner.test/*") -> dict[str, Any]:
    return {
        "url": url,
        "methods": ["POST"],
        "services": {"action": {"rating": {"maxCallsCount": count, "periodInMs": period_ms}}},
    }


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


async def test_a_capping_rule_over_redis(backend: RedisBackend) -> None:
    limits = Limits(capping_rules=[capping(3, 60_000)], backend=backend)
    limiter = limits.endpoint("POST", "https://api.partner.test/send")
    assert limiter.admit_now() is None  # the count is in Redis: always awaited
    results = [await limiter.admit() for _ in range(5)]
    assert [r.capped for r in results] == [False, False, False, True, True]
    assert "allows 3 calls per 60000 ms" in results[3].reason


async def test_the_admissions_of_one_tick_are_one_script_call_and_the_cap_stays_exact(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts: list[int] = []
    run = backend.run

    async def counted(script: Any, keys: list[str], args: list[Any]) -> Any:
        scripts.append(len(keys))
        return await run(script, keys, args)

    monkeypatch.setattr(backend, "run", counted)
    limits = Limits(capping_rules=[capping(20, 60_000)], backend=backend)
    first = limits.endpoint("POST", "https://api.partner.test/a")
    second = limits.endpoint("POST", "https://api.partner.test/b")  # same rule, same count
    results = await asyncio.gather(*(lim.admit() for lim in (first, second) * 25))
    assert [r.capped for r in results].count(False) == 20  # in order: the first 20 of the tick
    assert [r.capped for r in results] == [False] * 20 + [True] * 30
    assert scripts == [50 * 2]  # one call, two windows (host, rule) for each of the 50


async def test_two_runtimes_share_one_count(prefix: str) -> None:
    first, second = RedisBackend(REDIS_URL, prefix=prefix), RedisBackend(REDIS_URL, prefix=prefix)
    try:
        a = Limits(capping_rules=[capping(4, 60_000)], backend=first)
        b = Limits(capping_rules=[capping(4, 60_000)], backend=second)
        url = "https://api.partner.test/x"
        answers = [await lim.endpoint("POST", url).admit() for lim in (a, b) * 3]
        assert [r.capped for r in answers] == [False] * 4 + [True] * 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_default_host_cap_and_slow_host_cap_over_redis(backend: RedisBackend) -> None:
    limits = Limits(backend=backend, default_cap=(6, 60.0), slow_host_cap=(2, 30.0))
    limiter = limits.endpoint("GET", "https://slow.partner.test/x")
    assert not (await limiter.admit()).capped
    for _ in range(10):
        limits.record_latency("slow.partner.test", 2.0)
    assert not (await limiter.admit()).capped
    refusal = await limiter.admit()
    assert refusal.capped and "slow host slow.partner.test" in refusal.reason
    for _ in range(20):
        limiter.record_latency(0.01)
    answers = [await limiter.admit() for _ in range(5)]
    assert [r.capped for r in answers] == [False] * 4 + [True]
    assert "default cap of 6 calls per 60 s" in answers[-1].reason


async def test_keys_expire_on_their_own(backend: RedisBackend, prefix: str) -> None:
    limits = Limits(capping_rules=[capping(5, 2_000)], backend=backend)
    await limits.endpoint("POST", "https://api.partner.test/x").admit()
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        assert len(keys) == 2  # the host's and the rule's
        for key in keys:
            ttl = await client.pttl(key)
            assert 0 < ttl <= 60_000 + 1_000
        rule_key = next(k for k in keys if b":cap:" in k)
        assert 2_000 < await client.pttl(rule_key) <= 3_000
    finally:
        await client.aclose()


async def test_throttling_over_redis_paces_departures_evenly_instead_of_failing(prefix: str) -> None:
    # The decisions read a clock that stands still: all 250 are made at one instant. The 250
    # answers queue for 32 connections: a loaded machine may take longer than the 0.5 s a
    # decision waits by default (seen once in CI), which is not what this test is about.
    backend = RedisBackend(REDIS_URL, prefix=prefix, clock=lambda: 1_800_000_000.0, timeout=30.0)
    rule = {"urlPattern": "https://api.partner.test/*", "methods": ["POST"], "maxThroughput": 200}
    try:
        limits = Limits(throttling_rules=[rule], backend=backend, sleep=no_sleep, max_queue_wait=10.0)
        limiter = limits.endpoint("POST", "https://api.partner.test/x")
        results = await asyncio.gather(*(limiter.admit() for _ in range(250)))
        waits = sorted(r.queued_seconds for r in results)
        assert not any(r.capped for r in results)
        assert waits == pytest.approx([k / 200 for k in range(250)], abs=1e-6)  # 5 ms apart
        # A caller allowing less queueing than the queue now holds is capped at once.
        impatient = Limits(throttling_rules=[rule], backend=backend, sleep=no_sleep, max_queue_wait=0.5)
        refused = await impatient.endpoint("POST", "https://api.partner.test/x").admit()
    finally:
        await backend.aclose()
    assert refused.capped and "exceed the limit (0.5 s)" in refused.reason


# -- four processes, one cap -------------------------------------------------------------------

CAP, PERIOD_MS, DURATION = 30, 500, 2.0


class _Recorder(BaseHTTPRequestHandler):
    """Records each call's arrival time and the Redis decision time the call carries."""

    protocol_version = "HTTP/1.1"  # keep-alive: no connection set-up between decision and arrival
    arrivals: ClassVar[list[tuple[float, int]]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with self.lock:
            self.arrivals.append((arrived, body["decided"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _RecordingBackend(RedisBackend):
    """Keeps Redis's decision time of each admitted attempt: the exact time the cap counts."""

    decisions: list[int]

    async def take(self, keys: list[str], args: list[Any]) -> tuple[int, int]:
        refused, now = await super().take(keys, args)
        if not refused:
            self.decisions.append(now)
        return refused, now


def _worker(prefix: str, port: int, start: Any, results: Any) -> None:
    results.put(asyncio.run(_hammer(prefix, port, start)))


async def _hammer(prefix: str, port: int, start: Any) -> tuple[list[int], int, int]:
    backend = _RecordingBackend(REDIS_URL, prefix=prefix)
    backend.decisions = []
    url = f"http://127.0.0.1:{port}/send"
    limits = Limits(capping_rules=[capping(CAP, PERIOD_MS, f"http://127.0.0.1:{port}/*")], backend=backend)
    sent = refused = 0
    async with aiohttp.ClientSession() as session:
        # Open the connections before the start, so the first admitted calls are not late.
        async def warm() -> None:
            async with session.get(f"http://127.0.0.1:{port}/warm") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(4)))
        start.wait()  # every process starts hammering at once
        deadline = time.monotonic() + DURATION

        async def loop() -> None:
            nonlocal sent, refused
            limiter = limits.endpoint("POST", url)
            while time.monotonic() < deadline:
                if (await limiter.admit()).capped:
                    refused += 1
                    await asyncio.sleep(0.02)  # pacing the load generator, not a race fix
                    continue
                decided = backend.decisions[-1]  # appended by this very admit, no await between
                async with session.post(url, json={"decided": decided}) as response:
                    assert response.status == 200
                sent += 1

        await asyncio.gather(*(loop() for _ in range(4)))
    await limits.aclose()
    return backend.decisions, sent, refused


def _in_window(times: list[float], end: float, period: float) -> int:
    return bisect_right(times, end) - bisect_right(times, end - period)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops SYNs: 1 s client retransmits


def test_four_processes_share_one_cap(prefix: str) -> None:
    server = _Server(("127.0.0.1", 0), _Recorder)
    _Recorder.arrivals = []
    # fork: the workers start in a fraction of the time spawn takes; the server thread starts
    # after the fork, so no thread is ever forked mid-operation.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(prefix, server.server_address[1], start, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        server.shutdown()
        server.server_close()

    decisions = sorted(t for times, _, _ in outcomes for t in times)
    sent = sum(s for _, s, _ in outcomes)
    assert all(s > 0 for _, s, _ in outcomes), "every process got some of the shared cap"
    assert all(r > 0 for _, _, r in outcomes), "every process was refused some of the time"
    assert sent == len(decisions) == len(_Recorder.arrivals)
    # Exact, on Redis's clock: no window of PERIOD_MS ever admitted more than CAP.
    period_us = PERIOD_MS * 1000
    assert max(_in_window(decisions, end, period_us) for end in decisions) == CAP
    # At the server: each call arrives some time after its decision. Over the run that delay
    # varies by `spread` (scheduling on a shared 2-core machine); any window of PERIOD - spread
    # at the server then maps into one PERIOD of decisions, so it can never hold more than CAP.
    delays = [arrived - decided / 1e6 for arrived, decided in _Recorder.arrivals]
    spread = max(delays) - min(delays)
    assert spread < PERIOD_MS / 1000, f"calls took {spread:.3f} s longer than others to arrive"
    arrivals = sorted(arrived for arrived, _ in _Recorder.arrivals)
    window = PERIOD_MS / 1000 - spread
    assert max(_in_window(arrivals, end, window) for end in arrivals) <= CAP
    assert sorted(decided for _, decided in _Recorder.arrivals) == decisions
    # And the cap was used, not just enforced: about CAP per period over the run.
    assert sent >= CAP * (DURATION / (PERIOD_MS / 1000)) * 0.6


# -- Redis down or hung: calls keep their deadline ------------------------------------------------


class FlakyRedis:
    """A loopback port in front of the real Redis. Hung: it accepts connections and never
    answers. Passing: it forwards bytes both ways, as Redis coming back would."""

    def __init__(self) -> None:
        self.port = 0
        self.passing = False
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> FlakyRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if not self.passing:
                await reader.read()  # hold the connection, answer nothing, until the client leaves
                return
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 6379)

            async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
                sink.close()

            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[list[str]]:
    """A loopback endpoint recording the path of each call it receives."""
    from aiohttp import web

    received: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    received.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
    yield received
    await runner.cleanup()


def runtime_over(tmp_path: Any, base_url: str, backend: RedisBackend) -> Any:
    from actionrt.runtime import Runtime

    action = {
        "name": "notify",
        "endpoint": {"url": f"{base_url}/send", "method": "POST"},
        "request": {"sample": {"to": "x"}, "variables": {"to": {"label": "To"}}},
        "timeout": 1,
    }
    (tmp_path / "notify.json").write_text(json.dumps(action))
    limits = Limits(capping_rules=[capping(1000, 60_000, url=f"{base_url}/*")], backend=backend)
    return Runtime.from_path(tmp_path, allow_private_network=True, limits=limits)


async def test_a_hung_redis_fails_calls_within_their_timeout_warns_once_and_calls_flow_again(
    prefix: str, tmp_path: Any, endpoint: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    base_url = endpoint.pop()
    flaky = await FlakyRedis().start()
    backend = RedisBackend(
        f"redis://127.0.0.1:{flaky.port}/0", prefix=prefix, max_connections=4, max_reconnect_wait=0.2
    )
    caplog.set_level(logging.INFO, logger="actionrt")
    async with runtime_over(tmp_path, base_url, backend) as runtime:
        # 64 calls, 4 pool connections, a Redis that never answers: each call still ends
        # within its own 1 s timeout (+100 ms), none reaches the endpoint.
        async with asyncio.timeout(1.1):
            results = await asyncio.gather(*(runtime.invoke("notify", {"to": "a"}) for _ in range(64)))
        assert {(r.status, r.error_code) for r in results} == {("internalError", "limitsUnavailable")}
        assert "the limits store (Redis at 127.0.0.1:" in results[0].error
        assert endpoint == []
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None  # one line, no traceback
        assert "unavailable: no answer within 0.5 s" in warnings[0].getMessage()

        flaky.passing = True  # Redis answers again: no restart needed
        await asyncio.wait_for(backend.available.wait(), 10)
        recovered = await runtime.invoke("notify", {"to": "a"})
        assert recovered.status == "http_200", recovered.error
        assert endpoint == ["/send"]
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
        assert any("answers again" in r.getMessage() for r in caplog.records)
    await flaky.stop()


async def test_an_unreachable_redis_fails_the_call_at_once_as_limits_unavailable(
    prefix: str, tmp_path: Any, endpoint: list[str]
) -> None:
    base_url = endpoint.pop()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    backend = RedisBackend(f"redis://:hunter2@127.0.0.1:{port}/0", prefix=prefix)
    async with runtime_over(tmp_path, base_url, backend) as runtime:
        result = await runtime.invoke("notify", {"to": "a"})
    closed.close()
    assert (result.status, result.error_code) == ("internalError", "limitsUnavailable")
    assert "hunter2" not in result.error and endpoint == []
