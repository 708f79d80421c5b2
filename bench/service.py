"""Invoke through the service's API vs in-process `Runtime.invoke`: same action, nginx endpoint.

    uv run python bench/service.py              # concurrency 32, 3 rounds of 3 s; ~30 s
    uv run python bench/service.py -c 32 64 -d 5
    uv run python bench/service.py --before ../main/.venv/bin/python   # and another checkout

Starts nginx on loopback (as bench/throughput.py does), then `actionrt serve` itself in a
subprocess (its defaults: uvicorn with httptools on uvloop, one process, a log line per call,
no access log) over a fresh store, creates the benchmarked action through the API, and drives
`POST /actions/loyaltyBench/invoke` at the given concurrency (actionrt's own HTTP/1.1 client as
the load generator); beside it, `Runtime.invoke` of the same action in this process, and
`GET /healthz` on the service (a route through the whole FastAPI stack, for comparison: plain
invokes take the hot path, service/hot_path.py). The load generator, the service and nginx
share the machine's cores: the ratio is what to compare. CPU per call is printed for both
sides (this process during its in-process rounds, the service's from /proc): their ratio
leaves out how the cores were shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from throughput import (
    Call,
    Client,
    Measure,
    actionrt_runtime,
    bench_action,
    bench_params,
    free_port,
    loopback_nginx,
    measure_all,
    process_cpu,
)

from actionrt.guard import DestinationPolicy
from actionrt.http import Http1Transport, HttpRequest

CPU_PER_CALL: dict[str, float] = {}
served: Counter[str] = Counter()


def service_api(floor: bool = False, python: str = sys.executable, name: str = "service API") -> Client:
    """`POST /actions/loyaltyBench/invoke` on `actionrt serve` run by `python` in its own
    process; `floor`: `GET /healthz` instead (a route through the whole FastAPI stack)."""
    state: dict[str, Any] = {}

    async def open_(base: str) -> Call:
        port = free_port()
        folder = Path(tempfile.mkdtemp(prefix="actionrt-bench-service-"))
        command = [python, "-m", "actionrt", "serve", "--port", str(port)]
        command += ["--store", str(folder / "store.db"), "--no-examples", "--allow-private-network"]
        log_path = folder / "service.log"
        with log_path.open("wb") as log:  # its lines (one per call) go to a file, not the terminal
            state["process"] = process = subprocess.Popen(command, stdout=log, stderr=log)
        session = state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit(f"the service did not start (its log: {log_path})")
            try:
                async with session.get(url + "/healthz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    sys.exit("the service did not answer within 30 s")
                await asyncio.sleep(0.1)
        async with session.post(url + "/actions", json=bench_action(base)) as created:
            if created.status != 201:
                sys.exit(f"creating the action failed: {created.status} {await created.text()}")
        await session.close()
        # The load generator is actionrt's own lean HTTP/1.1 client (it shares the cores with
        # the service: the cheapest well-behaved client leaves the most to the service).
        client = state["client"] = Http1Transport(policy=DestinationPolicy(allow_private_network=True))
        invoke = url + "/actions/loyaltyBench/invoke"
        json_headers = {"Content-Type": "application/json"}

        async def health(i: int) -> None:
            answer = await client.send(HttpRequest("GET", url + "/healthz"))
            if answer.status != 200:
                raise RuntimeError(answer.status)

        async def call(i: int) -> None:
            served[name] += 1
            body = json.dumps({"params": bench_params(i)}).encode()
            answer = await client.send(HttpRequest("POST", invoke, dict(json_headers), body))
            result = json.loads(answer.content)
            if answer.status != 200 or result["status"] != "http_200":
                raise RuntimeError(answer.status, result)

        state["cpu"] = process_cpu(process.pid)  # started, the action created: calls from here on
        return health if floor else call

    async def close() -> None:
        await state["client"].aclose()
        if not floor:  # the service's CPU over every call it served (warm-up included)
            used = process_cpu(state["process"].pid) - state["cpu"]
            CPU_PER_CALL[name] = used / max(served.pop(name, 0), 1)
        state["process"].terminate()
        state["process"].wait(10)

    return Client("GET /healthz" if floor else name, open_, close)


def service_floor() -> Client:
    return service_api(floor=True)


def service_before(python: str) -> Callable[[], Client]:
    return lambda: service_api(python=python, name="before")


async def run(args: argparse.Namespace, base: str) -> None:
    rows: dict[int, dict[str, Measure]] = {}
    cpu: dict[int, dict[str, float]] = {}
    for concurrency in args.concurrency:
        clients = [actionrt_runtime, service_api, service_floor]
        clients += [service_before(args.before)] if args.before else []
        rows[concurrency] = await measure_all(clients, base, concurrency, args.duration, args.rounds)
        cpu[concurrency] = dict(CPU_PER_CALL)
    before = (
        " | before: API invoke calls/s | before / in-process | before: service CPU/call"
        if args.before
        else ""
    )
    print(
        "| concurrency | Runtime.invoke calls/s | its CPU/call | API invoke calls/s | API / in-process "
        f"| GET /healthz req/s | service CPU/call{before} |"
    )
    print("|---" * (10 if args.before else 7) + "|")
    for concurrency, by_name in rows.items():
        local, api, floor = by_name["actionrt"], by_name["service API"], by_name["GET /healthz"]
        used = {name: f"{seconds * 1e6:,.0f} µs" for name, seconds in cpu[concurrency].items()}
        errors = {name: m.errors for name, m in by_name.items() if m.errors}
        old = by_name.get("before")
        print(
            f"| {concurrency} | {local.rate:,.0f} | {local.cpu_us:,.0f} µs | {api.rate:,.0f} "
            f"| {api.rate / local.rate:.2f} "
            f"| {floor.rate:,.0f} | {used['service API']} |"
            + (
                f" {old.rate:,.0f} | {old.rate / local.rate:.2f} | {used['before']} |"
                if old is not None
                else ""
            )
            + (f" errors: {json.dumps(errors)}" if errors else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("-d", "--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument(
        "--before",
        metavar="PYTHON",
        help="also the API of the actionrt installed for this interpreter (another checkout's "
        ".venv/bin/python), in the same run",
    )
    args = parser.parse_args()
    os.environ.setdefault("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with loopback_nginx() as base:
        print(f"nginx on {base}; {os.cpu_count()} cores; Python {sys.version.split()[0]}", file=sys.stderr)
        asyncio.run(run(args, base))


if __name__ == "__main__":
    main()
