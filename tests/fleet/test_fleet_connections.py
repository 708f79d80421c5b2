"""A capping rule's `maxHttpConnections` across the fleet: two worker processes on one Redis
hold the rule's limit at the endpoint together, not each (contract §5: caps hold across the fleet)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fleet_support import REDIS_URL, write_action
from test_runtime_limits import HoldingServer, capping, server  # noqa: F401 - the fixture

from actionrt.fleet import Queue


async def test_two_workers_hold_a_rules_max_http_connections_at_the_endpoint_together(
    tmp_path: Path,
    server: HoldingServer,  # noqa: F811
    queue_name: str,
    redis_client: Any,
    start_worker: Any,
) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    write_action(actions, server.url + "/v1/push")
    rules = tmp_path / "capping.json"
    rules.write_text(json.dumps([capping(server.url + "/*", 3)]))
    # Each worker would let 3 through with a gate of its own: a peak of up to 6.
    server.expect(total=40, hold_at=3)
    await asyncio.gather(*(start_worker(actions, "--capping", rules) for _ in range(2)))
    async with Queue(REDIS_URL, name=queue_name, actions=actions, allow_private_network=True) as queue:
        ids = await asyncio.gather(*(queue.submit("ping", params={"n": n}) for n in range(40)))
        results = await asyncio.gather(*(queue.result(i, wait=60) for i in ids))
    assert [r.status if r else None for r in results] == ["http_200"] * 40
    assert server.peak == 3
