"""What observability costs per call, side by side in one run: CPU-µs per `Runtime.invoke` with
no observability at all, with metrics on (the default; OpenTelemetry API, no SDK), with metrics
off (the API's "is an SDK configured?" check only), and with an SDK recording spans.

    uv run python bench/observability.py                 # ~20 s
    uv run python bench/observability.py -n 5000 -r 21   # more calls per round, more rounds

The transport answers in-process (a canned 200 with a small JSON body, no socket), so the
figures are the call path's own CPU and the observability work stands out instead of drowning
in network noise. Rounds are interleaved (A B C D A B C D ...) so a change in the machine's speed
hits every column alike; the median round of each column is reported, and its difference from
the column without observability.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from actionrt.http import HttpRequest, HttpResponse
from actionrt.runtime import Runtime

BODY = b'{"customerID":"xY12hye","status":"gold","points":1290}'
PARAMS = {
    "customer.email": "ada@example.com",
    "customer.points": 1290,
    "customer.tier": "gold",
    "customer.balance": 12.5,
    "customer.optin": True,
}


class CannedTransport:
    """Answers every request with the same 200, at once."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"content-type": "application/json"}, BODY, request.url)

    async def aclose(self) -> None:
        return None


def write_action(folder: Path) -> None:
    sample = {
        "customer": {"email": "a@example.com", "points": 1, "tier": "x", "balance": 1.5, "optin": False}
    }
    document = {
        "name": "loyaltyUpdate",
        "endpoint": {"url": "https://api.example.com/v1/loyalty", "method": "POST"},
        "request": {"sample": sample, "variables": {path: {"label": path} for path in PARAMS}},
    }
    (folder / "loyalty.json").write_text(json.dumps(document))


def build(folder: Path, column: str) -> Runtime:
    metrics: bool | CollectorRegistry = CollectorRegistry() if column in ("metrics", "sdk") else False
    runtime = Runtime.from_path(folder, transport=CannedTransport(), metrics=metrics)
    if column == "none":  # the call path with observability taken out
        runtime._watch = None
        runtime._send = runtime.transport.send
    return runtime


async def round_cpu(runtime: Runtime, calls: int) -> float:
    invoke = runtime.invoke
    started = time.process_time()
    for _ in range(calls):
        await invoke("loyaltyUpdate", PARAMS)
    return (time.process_time() - started) / calls * 1e6


async def measure(columns: list[str], calls: int, rounds: int) -> dict[str, list[float]]:
    folder = Path(tempfile.mkdtemp())
    write_action(folder)
    runtimes = {column: build(folder, column) for column in columns}
    for runtime in runtimes.values():
        await runtime.open()
        assert (await runtime.invoke("loyaltyUpdate", PARAMS)).ok
        await round_cpu(runtime, calls // 4)  # warm-up
    figures: dict[str, list[float]] = {column: [] for column in columns}
    for _ in range(rounds):
        for column in columns:
            figures[column].append(await round_cpu(runtimes[column], calls))
    for runtime in runtimes.values():
        await runtime.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--calls", type=int, default=3000, help="calls per round and column")
    parser.add_argument("-r", "--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--no-sdk", action="store_true", help="skip the column with an SDK")
    options = parser.parse_args()

    columns = ["none", "metrics", "api-only"]
    figures = asyncio.run(measure(columns, options.calls, options.rounds))
    if not options.no_sdk:
        # Configured last: a process has one global tracer provider.
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())  # spans recorded, exported nowhere
        figures |= asyncio.run(measure(["sdk"], options.calls, options.rounds))
    base = statistics.median(figures["none"])
    labels = {
        "none": "no observability",
        "metrics": "metrics on, OTel API, no SDK (default)",
        "api-only": "metrics off, OTel API, no SDK",
        "sdk": "metrics on, OTel SDK recording spans",
    }
    print(f"Python {sys.version.split()[0]}; {options.rounds} rounds x {options.calls} calls; median round")
    print(f"| {'column':<40} | CPU-µs/call | vs none |")
    print(f"|{'-' * 42}|-------------|---------|")
    for column, values in figures.items():
        median = statistics.median(values)
        print(f"| {labels[column]:<40} | {median:11.2f} | {median - base:+7.2f} |")


if __name__ == "__main__":
    main()
