"""`actionrt demo`: run a sample journey for many customers against a loopback stand-in.

The example actions are loaded from `examples/`, their endpoints and token endpoints pointed at
a stand-in server on 127.0.0.1 (which fails a small share of calls with 503, to show retries),
and a journey's action nodes run for every customer. Offline, in seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actionrt.errors import Problem, ValidationError
from actionrt.hookspecs import Register, hookimpl
from actionrt.journey import ActionNode, Branch
from actionrt.journeys import is_journey
from actionrt.loader import iter_definition_files, read_document
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.results import InvocationResult
from actionrt.runtime import Runtime
from actionrt.secrets import MappingSecrets, SecretProvider
from actionrt.standin import StandIn

DEMO_SECRETS = {  # the examples read these from files (`{{ secrets.file:NAME }}`)
    "sms_username": "demo",
    "sms_password": "demo-password",
    "weather_api_key": "demo-key",
    "crm_token": "demo-token",
}


class DemoSecrets:
    """A plugin giving the examples' secrets their demo values (the stand-in accepts any)."""

    @hookimpl
    def register_secret_providers(self, register: Register[SecretProvider]) -> None:
        register(MappingSecrets(DEMO_SECRETS, name="file"), override=True)  # replaces `file` on purpose


@dataclass
class DemoReport:
    """What the demo measured."""

    customers: int
    calls: int
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    branches: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    token_requests: int = 0
    server_statuses: Counter[int] = field(default_factory=Counter)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def point_at(raw: Any, base_url: str) -> Any:
    """The action dict with its endpoint and token endpoint moved onto the stand-in (a document
    that is not an action is returned as it is, for the registry to report)."""
    endpoint = raw.get("endpoint") if isinstance(raw, dict) else None
    if not isinstance(endpoint, dict) or not isinstance(endpoint.get("url"), str):
        return raw
    moved = dict(raw)
    parts = urlsplit(endpoint["url"])
    moved["endpoint"] = {**endpoint, "url": f"{base_url}/{parts.hostname}{parts.path}"}
    auth = moved.get("authentication")
    if isinstance(auth, dict) and isinstance(auth.get("endpoint"), str):
        token_path = "/login" if urlsplit(auth["endpoint"]).path.endswith("login") else "/token"
        moved["authentication"] = {**auth, "endpoint": base_url + token_path}
    return moved


def load_demo_registry(examples: Path, base_url: str) -> Registry:
    """The examples' actions and journeys, with every endpoint on the stand-in; raises
    ValidationError listing every problem of every file."""
    registry = Registry(Plugins.load(extra=[DemoSecrets()]), allow_private_network=True)
    problems: list[Problem] = []
    journeys: list[tuple[dict[str, Any], str]] = []
    for path in iter_definition_files([examples]):
        try:
            raw = read_document(path)
            if is_journey(raw):
                journeys.append((raw, str(path)))
            else:
                registry.add_action(point_at(raw, base_url), str(path))
        except ValidationError as exc:
            problems += exc.problems
    for raw, source in journeys:
        try:
            registry.add_journey({k: v for k, v in raw.items() if k != "kind"}, source)
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)
    return registry


def customer(i: int) -> dict[str, Any]:
    """The journey context of the i-th sample customer."""
    return {
        "profile": {"id": f"c-{i}", "email": f"customer{i}@example.com", "firstName": f"Customer {i}"},
        "event": {
            "points": i % 500,
            "cart": {
                "items": [{"sku": "SKU-1", "name": "Shoes", "quantity": 1, "price": 89.9}],
                "total": 89.9,
            },
        },
        "journey": {"id": "welcome"},
    }


async def run_demo(
    examples: Path,
    *,
    customers: int = 10_000,
    journey_id: str = "welcome",
    concurrency: int = 64,
    failure_rate: float = 0.02,
    progress: Callable[[int], None] | None = None,
) -> DemoReport:
    """Run `journey_id` for `customers` customers and report what happened; ValidationError
    when the examples do not load or have no such journey."""
    standin = StandIn(failure_rate=failure_rate)
    await standin.start()
    try:
        registry = load_demo_registry(examples, standin.base_url)
        if journey_id not in registry.journeys:
            known = ", ".join(sorted(registry.journeys)) or "none"
            raise ValidationError.single(str(examples), "", f"no journey {journey_id!r} (known: {known})")
        journey = registry.journeys[journey_id].definition
        async with Runtime(registry) as runtime:
            nodes = [ActionNode.from_spec(runtime, spec) for spec in journey.nodes]
            report = DemoReport(customers=customers, calls=0, seconds=0.0)
            results: list[InvocationResult] = []
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(customers):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    context = customer(i)
                    for node in nodes:
                        branch, result = await node.step(context)
                        results.append(result)
                        if branch is not Branch.SUCCESS:
                            report.branches[f"{node.node_id}:{branch.value}"] += 1
                            break
                    else:
                        report.branches["completed"] += 1
                    if progress is not None:
                        progress(1)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            report.seconds = time.perf_counter() - start
        report.calls = len(results)
        report.statuses = Counter(r.status for r in results)
        report.retries = sum(r.attempts - 1 for r in results if r.attempts > 1)
        report.latencies = [r.elapsed for r in results]
        report.token_requests = standin.token_requests
        report.server_statuses = standin.statuses
        return report
    finally:
        await standin.stop()
