"""Journey node cost: an action node whose five payload variables come from Jinja2 filter
mappings, against the same node with the five values given as they are (no mapping to run).

    uv run python bench/journey.py [--calls 20000] [--rounds 5]

The action's endpoint is a canned in-process transport (no network, no token): what is timed
is the node (mappings, then `Runtime.invoke`). Prints CPU-µs per node call for each, best of
`rounds` (rounds interleaved), and the difference: what the five mappings cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from actionrt.http import HttpRequest, HttpResponse
from actionrt.journey import ActionNode
from actionrt.runtime import Runtime

URL = "https://api.example.com/v1/loyalty"
ACTION = {
    "name": "loyaltyNode",
    "endpoint": {"url": URL, "method": "POST"},
    "authentication": {"type": "none"},
    "request": {
        "sample": {"email": "ada@example.com", "name": "Ada", "tier": "gold", "points": 10, "city": "Paris"},
        "variables": {
            "email": {"label": "Email"},
            "name": {"label": "Name"},
            "tier": {"label": "Tier"},
            "points": {"label": "Points"},
            "city": {"label": "City"},
        },
    },
}
CONTEXT: dict[str, Any] = {
    "profile": {"email": " Ada@Example.com ", "name": "ada lovelace", "city": "paris"},
    "event": {"points": "1290", "tier": None},
    "journey": {"id": "welcome"},
}
FILTERS = {
    "email": "{{ profile.email | trim | lower }}",
    "name": "{{ profile.name | title }}",
    "tier": "{{ event.tier | default('silver', true) }}",
    "points": "{{ event.points | int }}",
    "city": "{{ profile.city | upper }}",
}
GIVEN = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "tier": "silver",
    "points": 1290,
    "city": "PARIS",
}
ANSWER = HttpResponse(200, {"content-type": "application/json"}, b'{"status":"gold"}', URL)


class Canned:
    """The endpoint's answer, at once."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        return ANSWER

    async def aclose(self) -> None:
        """Nothing to close."""


async def measure(node: ActionNode, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        result = await node.invoke(CONTEXT)
        assert result.ok, result.error
    return (time.process_time() - started) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="actionrt-bench-journey-"))
    try:
        (folder / "node.json").write_text(json.dumps(ACTION))
        runtime = Runtime.from_path(folder, transport=Canned())  # type: ignore[arg-type]
    finally:
        shutil.rmtree(folder)
    async with runtime:
        nodes = {
            "five filter mappings": ActionNode(runtime, "loyaltyNode", params=FILTERS),
            "values given as they are": ActionNode(runtime, "loyaltyNode", params=GIVEN),
        }
        best = dict.fromkeys(nodes, float("inf"))
        for _ in range(rounds):
            for name, node in nodes.items():
                best[name] = min(best[name], await measure(node, calls))
    print(f"{calls} node calls per round, best of {rounds}")
    for name, cpu in best.items():
        print(f"  {name:<26} {cpu:6.1f} CPU-µs per node call")
    extra = best["five filter mappings"] - best["values given as they are"]
    print(f"  the five mappings cost     {extra:6.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
