"""Invoke through the service's API vs in-process `Runtime.invoke`: same action, nginx endpoint.

    uv run python bench/service.py              # concurrency 32, 3 rounds of 3 s; ~30 s
    uv run python bench/service.py -c 32 64 -d 5

Starts nginx on loopback (as bench/throughput.py does), then `actionrt serve`'s application in
a subprocess (uvicorn with httptools, one process) over a fresh store holding the benchmarked
action, and drives `POST /actions/loyaltyBench/invoke` at the given concurrency (actionrt's
own HTTP/1.1 client as the load generator); beside it, `Runtime.invoke` of the same action in
this process, and `GET /healthz` on the service (the HTTP round trip alone: the ceiling of the
API column). The load generator, the service and nginx share the machine's cores: the ratio is
what to compare. The service runs on uvloop when installed (`--loop asyncio` to compare).
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
from pathlib import Path
from typing import Any

import aiohttp
from throughput import (
    Call,
    Client,
    Measure,
    actionrt_runtime,
    bench_action,
    free_port,
    loopback_nginx,
    measure_all,
)

from actionrt.guard import DestinationPolicy
from actionrt.http import Http1Transport, HttpRequest
from actionrt.loops import best_loop_name

HERE = Path(__file__).resolve()


def params(i: int) -> dict[str, Any]:
    return {
        "customer.email": f"user{i}@example.com",
        "customer.points": i,
        "order.id": f"o-{i}",
        "order.total": i * 1.5,
        "order.express": bool(i & 1),
    }


def serve(port: int, store: Path, base: str, loop: str) -> None:
    """The service process: the application over `store`, with the action, on `port`."""
    import uvicorn
    from cryptography.fernet import Fernet

    from actionrt.service import create_app

    app = create_app(store, allow_private_network=True, secret_key=Fernet.generate_key(), entry_points=False)
    app.state.service.catalog.create(bench_action(base))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop=loop,  # type: ignore[arg-type]
    )


LOOP = {"name": best_loop_name()}


def service_api(floor: bool = False) -> Client:
    """`POST /actions/loyaltyBench/invoke` on the service in its own process; `floor`: the
    same client and server answering `GET /healthz` (what the HTTP round trip alone costs)."""
    state: dict[str, Any] = {}

    async def open_(base: str) -> Call:
        port = free_port()
        folder = Path(tempfile.mkdtemp(prefix="actionrt-bench-service-"))
        state["process"] = process = subprocess.Popen(
            [sys.executable, str(HERE), "--serve", str(port), str(folder / "store.db"), base, LOOP["name"]]
        )
        session = state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit("the service did not start")
            try:
                async with session.get(url + "/healthz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    sys.exit("the service did not answer within 30 s")
                await asyncio.sleep(0.1)
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
            body = json.dumps({"params": params(i)}).encode()
            answer = await client.send(HttpRequest("POST", invoke, dict(json_headers), body))
            result = json.loads(answer.content)
            if answer.status != 200 or result["status"] != "http_200":
                raise RuntimeError(answer.status, result)

        return health if floor else call

    async def close() -> None:
        await state["client"].aclose()
        state["process"].terminate()
        state["process"].wait(10)

    return Client("GET /healthz" if floor else "service API", open_, close)


def service_floor() -> Client:
    return service_api(floor=True)


async def run(args: argparse.Namespace, base: str) -> None:
    rows: dict[int, dict[str, Measure]] = {}
    for concurrency in args.concurrency:
        rows[concurrency] = await measure_all(
            [actionrt_runtime, service_api, service_floor], base, concurrency, args.duration, args.rounds
        )
    print(
        "| concurrency | Runtime.invoke calls/s | API invoke calls/s | API / in-process "
        "| GET /healthz req/s (HTTP floor) |"
    )
    print("|---|---|---|---|---|")
    for concurrency, by_name in rows.items():
        local, api, floor = by_name["actionrt"], by_name["service API"], by_name["GET /healthz"]
        errors = {name: m.errors for name, m in by_name.items() if m.errors}
        print(
            f"| {concurrency} | {local.rate:,.0f} | {api.rate:,.0f} | {api.rate / local.rate:.2f} "
            f"| {floor.rate:,.0f} |" + (f" errors: {json.dumps(errors)}" if errors else "")
        )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("-d", "--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument(
        "--loop", choices=["asyncio", "uvloop"], default=best_loop_name(), help="the service's loop"
    )
    args = parser.parse_args()
    LOOP["name"] = args.loop
    os.environ.setdefault("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with loopback_nginx() as base:
        print(f"nginx on {base}; {os.cpu_count()} cores; Python {sys.version.split()[0]}", file=sys.stderr)
        asyncio.run(run(args, base))


if __name__ == "__main__":
    main()
