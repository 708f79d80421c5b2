"""`maxHttpConnections` end to end: a loopback server counts the requests it holds at once and
releases them only as the count allows, so a missing or loose gate shows up as a higher peak
(or, for a gate that is too tight, as calls that never finish)."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from actionrt.guard import DestinationPolicy
from actionrt.http import AiohttpTransport, Http1Transport, Transport
from actionrt.runtime import Runtime


class HoldingServer:
    """Counts the requests in flight (arrival to answer) and holds each one: when `hold_at` are
    in flight the oldest is answered, and once `total` have arrived all are. With a gate of
    `hold_at` the peak is exactly `hold_at`; without one, requests keep arriving while the
    first ones are held and the peak climbs past it."""

    def __init__(self) -> None:
        self.port = 0
        self.hold_at = 1
        self.total = 1
        self.arrived = 0
        self.in_flight = 0
        self.peak = 0
        self.paths: collections.Counter[str] = collections.Counter()
        self._held: collections.deque[asyncio.Future[None]] = collections.deque()

    def expect(self, total: int, hold_at: int) -> None:
        self.total, self.hold_at = total, hold_at
        self.arrived = self.peak = 0
        self.paths.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        self.paths[request.path] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        held = asyncio.get_running_loop().create_future()
        self._held.append(held)
        if self.arrived >= self.total:
            while self._held:
                self._held.popleft().set_result(None)
        elif self.in_flight >= self.hold_at:
            self._held.popleft().set_result(None)
        try:
            await held
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})

    def release_all(self) -> None:
        while self._held:
            held = self._held.popleft()
            if not held.done():
                held.set_result(None)


@pytest.fixture
async def server() -> AsyncIterator[HoldingServer]:
    holding = HoldingServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", holding.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    holding.port = runner.addresses[0][1]
    yield holding
    holding.release_all()
    await runner.cleanup()


TRANSPORTS: dict[str, Callable[[DestinationPolicy], Transport]] = {
    "http1": lambda policy: Http1Transport(policy=policy),
    "aiohttp": lambda policy: AiohttpTransport(policy=policy),
}


@pytest.fixture(params=sorted(TRANSPORTS))
def transport_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def capping(url: str, connections: int | None) -> dict[str, Any]:
    action: dict[str, Any] = {"rating": {"maxCallsCount": 100_000, "periodInMs": 1000}}
    if connections is not None:
        action["maxHttpConnections"] = connections
    return {"url": url, "methods": ["POST"], "services": {"action": action}}


def write_action(folder: Path, name: str, url: str) -> None:
    document = {
        "name": name,
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        "retry": {"count": 0},
    }
    (folder / f"{name}.json").write_text(json.dumps(document))


def runtime_for(folder: Path, kind: str, rules: list[dict[str, Any]]) -> Runtime:
    policy = DestinationPolicy(True)
    return Runtime.from_path(
        folder, policy=policy, transport=TRANSPORTS[kind](policy), capping=rules, plugins=()
    )


async def invoke_all(runtime: Runtime, names: list[str]) -> None:
    # A gate tighter than the server's hold count would leave calls waiting forever: fail instead.
    async with asyncio.timeout(20):
        results = await asyncio.gather(*(runtime.invoke(name, {"n": i}) for i, name in enumerate(names)))
    assert [r.status for r in results] == ["http_200"] * len(names)


async def test_max_http_connections_3_holds_50_concurrent_calls_to_3_in_flight(
    server: HoldingServer, transport_kind: str, tmp_path: Path
) -> None:
    write_action(tmp_path, "push", server.url + "/push")
    server.expect(total=50, hold_at=3)
    async with runtime_for(tmp_path, transport_kind, [capping(server.url + "/*", 3)]) as runtime:
        await invoke_all(runtime, ["push"] * 50)
    assert server.arrived == 50
    assert server.peak == 3


async def test_without_a_connection_rule_calls_are_not_gated(
    server: HoldingServer, transport_kind: str, tmp_path: Path
) -> None:
    # The server answers nothing until all 10 are in: any gate below 10 would never finish.
    write_action(tmp_path, "push", server.url + "/push")
    server.expect(total=10, hold_at=10)
    rules = [capping(server.url + "/*", None)]  # a cap without maxHttpConnections
    async with runtime_for(tmp_path, transport_kind, rules) as runtime:
        await invoke_all(runtime, ["push"] * 10)
        assert runtime._connections._by_limiter == {}  # the success path never looked for a gate
    assert server.peak == 10


async def test_the_smallest_max_http_connections_of_the_matching_rules_binds(
    server: HoldingServer, tmp_path: Path
) -> None:
    write_action(tmp_path, "push", server.url + "/v1/push")
    server.expect(total=30, hold_at=2)
    rules = [capping(server.url + "/*", 5), capping(server.url + "/v1/*", 2)]
    async with runtime_for(tmp_path, "http1", rules) as runtime:
        await invoke_all(runtime, ["push"] * 30)
    assert server.peak == 2


async def test_actions_matched_by_one_rule_share_its_connections(
    server: HoldingServer, tmp_path: Path
) -> None:
    write_action(tmp_path, "first", server.url + "/a")
    write_action(tmp_path, "second", server.url + "/b")
    server.expect(total=40, hold_at=3)
    async with runtime_for(tmp_path, "http1", [capping(server.url + "/*", 3)]) as runtime:
        await invoke_all(runtime, ["first", "second"] * 20)
    assert server.paths == {"/a": 20, "/b": 20}
    assert server.peak == 3


async def test_a_rule_deployed_on_a_running_runtime_gates_and_undeployed_no_longer(
    server: HoldingServer, tmp_path: Path
) -> None:
    write_action(tmp_path, "push", server.url + "/push")
    async with runtime_for(tmp_path, "http1", []) as runtime:
        server.expect(total=5, hold_at=5)
        await invoke_all(runtime, ["push"] * 5)  # before the rule: 5 at once
        assert server.peak == 5

        uid = runtime.limits.create_capping(capping(server.url + "/push", 2))
        runtime.limits.deploy(uid)
        server.expect(total=20, hold_at=2)
        await invoke_all(runtime, ["push"] * 20)
        assert server.peak == 2

        runtime.limits.undeploy(uid)
        server.expect(total=6, hold_at=6)
        await invoke_all(runtime, ["push"] * 6)
        assert server.peak == 6
