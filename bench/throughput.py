"""Side-by-side throughput: raw aiohttp vs raw httpx vs actionrt, one run, nginx on loopback.

    uv run python bench/throughput.py                 # concurrency 1, 64, 256; ~1 minute
    uv run python bench/throughput.py -c 64 -d 5      # one concurrency, longer rounds
    uv run python bench/throughput.py --profile actionrt -c 64   # cProfile of one column
    uv run python bench/throughput.py --loops uvloop      # one event loop only

Every concurrency runs on asyncio's loop and on uvloop (one row each), each column against the
raw clients on the same loop.

Starts its own nginx (Debian package `nginx`, one worker, `return 200`, `access_log off`) in a
temporary prefix on a free loopback port, and stops it at the end. Absolute figures drift on a
shared machine; the ratios measured in the same run are what to compare (performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvloop

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SUCCESS_BODY = '{"customerID":"xY12hye","status":"gold","points":1290}'
TOKEN_BODY = '{"access_token":"t","expires_in":3600}'

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location /token {{ return 200 '{token}'; }}
        location / {{ return 200 '{body}'; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def loopback_nginx() -> Iterator[str]:
    """Run nginx on a free loopback port for the duration; yields its base URL."""
    if not Path(NGINX).exists():
        sys.exit("nginx not found: apt-get install nginx")
    prefix = Path(tempfile.mkdtemp(prefix="actionrt-bench-"))
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, token=TOKEN_BODY, body=SUCCESS_BODY))
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                sys.exit(f"nginx did not start: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                sys.exit("nginx did not open its port within 10 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(prefix, ignore_errors=True)


def payload(i: int) -> dict[str, Any]:
    """The body every client posts: the sample with its five variable fields set."""
    return {
        "customer": {"email": f"user{i}@example.com", "points": i, "tier": "gold"},
        "source": "journeys",
        "order": {"id": f"o-{i}", "total": i * 1.5, "express": bool(i & 1)},
    }


HEADERS = {"Authorization": "Bearer t", "x-request-id": "bench"}

Call = Callable[[int], Awaitable[None]]


@dataclass
class Client:
    """One column: how to open it, make one call, and close it."""

    name: str
    open: Callable[[str], Awaitable[Call]]
    close: Callable[[], Awaitable[None]]


def raw_aiohttp() -> Client:
    state: dict[str, aiohttp.ClientSession] = {}

    async def open_(base: str) -> Call:
        session = state["s"] = aiohttp.ClientSession()
        url = base + "/v1/loyalty"

        async def call(i: int) -> None:
            async with session.post(url, json=payload(i), headers=HEADERS) as answer:
                await answer.json()
                if answer.status != 200:
                    raise RuntimeError(answer.status)

        return call

    async def close() -> None:
        await state["s"].close()

    return Client("raw aiohttp", open_, close)


def raw_httpx() -> Client:
    state: dict[str, httpx.AsyncClient] = {}

    async def open_(base: str) -> Call:
        client = state["c"] = httpx.AsyncClient()
        url = base + "/v1/loyalty"

        async def call(i: int) -> None:
            answer = await client.post(url, json=payload(i), headers=HEADERS)
            answer.json()
            if answer.status_code != 200:
                raise RuntimeError(answer.status_code)

        return call

    async def close() -> None:
        await state["c"].aclose()

    return Client("raw httpx", open_, close)


def actionrt_transport(kind: str) -> Callable[[], Client]:
    """actionrt's HTTP layer alone (`Http1Transport` or `AiohttpTransport`): what the
    transport costs without prepare, limiter, auth and retry."""

    def factory() -> Client:
        from actionrt.http import AiohttpTransport, Http1Transport, HttpRequest, Transport

        state: dict[str, Transport] = {}

        async def open_(base: str) -> Call:
            transport = state["t"] = Http1Transport() if kind == "http1" else AiohttpTransport()
            url = base + "/v1/loyalty"

            async def call(i: int) -> None:
                request = HttpRequest(
                    "POST",
                    url,
                    {**HEADERS, "Content-Type": "application/json; charset=utf-8"},
                    json.dumps(payload(i)).encode(),
                )
                answer = await transport.send(request)
                json.loads(answer.content)
                if answer.status != 200:
                    raise RuntimeError(answer.status)

            return call

        async def close() -> None:
            await state["t"].aclose()

        return Client(f"{kind} transport", open_, close)

    return factory


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its threads have used so far (Linux, /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_params(i: int) -> dict[str, Any]:
    """Call `i`'s values of the benchmarked action's five variables."""
    return {
        "customer.email": f"user{i}@example.com",
        "customer.points": i,
        "order.id": f"o-{i}",
        "order.total": i * 1.5,
        "order.express": bool(i & 1),
    }


def bench_action(base: str) -> dict[str, Any]:
    """The benchmarked action: five variable payload fields, a cached custom-auth bearer token
    (the token endpoint is nginx's /token), retries and the default capping left on."""
    return {
        "name": "loyaltyBench",
        "endpoint": {
            "url": base + "/v1/loyalty",
            "method": "POST",
            "headers": [{"name": "x-request-id", "value": "bench"}],
        },
        "authentication": {
            "type": "customAuthorization",
            "endpoint": base + "/token",
            "method": "POST",
            "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
            "tokenInResponse": "json://access_token",
            "cacheDuration": {"expiryInResponse": "json://expires_in", "timeUnit": "seconds"},
            "authorizationType": "bearer",
        },
        "request": {
            "sample": payload(0),
            "variables": {
                "customer.email": {"label": "Email"},
                "customer.points": {"label": "Points"},
                "order.id": {"label": "Order"},
                "order.total": {"label": "Total"},
                "order.express": {"label": "Express"},
            },
        },
        "timeout": 10,
    }


def actionrt_runtime() -> Client:
    """`Runtime.invoke`, the whole call path (prepare, guard, limiter, auth, send, retry)."""
    from actionrt.runtime import Runtime

    state: dict[str, Any] = {}

    async def open_(base: str) -> Call:
        folder = Path(tempfile.mkdtemp(prefix="actionrt-bench-actions-"))
        (folder / "bench.json").write_text(json.dumps(bench_action(base)))
        runtime = state["r"] = Runtime.from_path(folder, allow_private_network=True)
        shutil.rmtree(folder)
        await runtime.open()
        invoke = runtime.invoke

        async def call(i: int) -> None:
            result = await invoke(
                "loyaltyBench",
                bench_params(i),
            )
            if not result.ok:
                raise RuntimeError(result.status, result.error)

        return call

    async def close() -> None:
        await state["r"].aclose()

    return Client("actionrt", open_, close)


CLIENTS: dict[str, Callable[[], Client]] = {
    "aiohttp": raw_aiohttp,
    "httpx": raw_httpx,
    "actionrt": actionrt_runtime,
    "http1": actionrt_transport("http1"),
    "aiohttp-transport": actionrt_transport("aiohttp"),
}
DEFAULT_CLIENTS = ["aiohttp", "httpx", "actionrt"]


@dataclass
class Measure:
    calls: int
    seconds: float
    cpu_seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(self.calls, 1) * 1e6


async def drive(call: Call, concurrency: int, duration: float) -> Measure:
    """`concurrency` workers call in a loop until `duration` has passed."""
    counter = iter(range(1 << 62))
    done = 0
    errors = 0
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + duration

    async def worker() -> None:
        nonlocal done, errors
        while loop.time() < stop_at:
            try:
                await call(next(counter))
                done += 1
            except Exception:
                errors += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Measure(done, time.perf_counter() - t0, time.process_time() - cpu0, errors)


async def measure_all(
    factories: list[Callable[[], Client]],
    base: str,
    concurrency: int,
    duration: float,
    rounds: int,
) -> dict[str, Measure]:
    """Best-of-`rounds` per client, rounds interleaved (A B C A B C) so that drift in the
    machine's speed hits every column alike; a short warm-up fills pools and token caches."""
    clients = [factory() for factory in factories]
    calls = [await client.open(base) for client in clients]
    best: dict[str, Measure] = {}
    try:
        for call in calls:
            await drive(call, concurrency, min(0.5, duration))
        for _ in range(rounds):
            for client, call in zip(clients, calls, strict=True):
                result = await drive(call, concurrency, duration)
                if client.name not in best or result.rate > best[client.name].rate:
                    best[client.name] = result
    finally:
        for client in clients:
            await client.close()
    return best


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def print_table(rows: dict[tuple[int, str], dict[str, Measure]]) -> None:
    names = list(next(iter(rows.values())))
    header = ["concurrency", "loop", *[f"{n} calls/s" for n in names]]
    ratio_names = [n for n in names if n not in ("raw aiohttp", "raw httpx")]
    for n in ratio_names:
        header += [f"{n}/aiohttp", f"{n}/httpx"]
    header += [f"{n} CPU-µs/call" for n in names]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (concurrency, loop), by_name in rows.items():
        cells = [str(concurrency), loop] + [f"{by_name[n].rate:,.0f}" for n in names]
        for n in ratio_names:
            for base in ("raw aiohttp", "raw httpx"):
                cells.append(f"{by_name[n].rate / by_name[base].rate:.2f}" if base in by_name else "–")
        cells += [f"{by_name[n].cpu_us:.0f}" for n in names]
        errors = {n: m.errors for n, m in by_name.items() if m.errors}
        print("| " + " | ".join(cells) + " |" + (f" errors: {errors}" if errors else ""))


def run(args: argparse.Namespace, base: str) -> None:
    """Every concurrency on every loop, each on a fresh loop of its kind (`asyncio.Runner`)."""
    rows: dict[tuple[int, str], dict[str, Measure]] = {}
    factories = [CLIENTS[key] for key in args.clients]
    for concurrency in args.concurrency:
        for loop in args.loops:
            with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
                row = runner.run(measure_all(factories, base, concurrency, args.duration, args.rounds))
            rows[concurrency, loop] = row
            for name, result in row.items():
                print(
                    f"  c={concurrency:<4} {loop:<8} {name:<20} {result.rate:>9,.0f} calls/s"
                    f"  {result.cpu_us:6.0f} CPU-µs/call  errors={result.errors}",
                    file=sys.stderr,
                )
    print_table(rows)


async def profile(args: argparse.Namespace, base: str) -> None:
    client = CLIENTS[args.profile]()
    call = await client.open(base)
    try:
        await drive(call, args.concurrency[0], 0.5)
        profiler = cProfile.Profile()
        profiler.enable()
        result = await drive(call, args.concurrency[0], args.duration)
        profiler.disable()
    finally:
        await client.close()
    print(f"{client.name}: {result.rate:,.0f} calls/s under the profiler", file=sys.stderr)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("-d", "--duration", type=float, default=2.0, help="seconds per round")
    parser.add_argument("-r", "--rounds", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--clients", nargs="+", default=DEFAULT_CLIENTS, choices=list(CLIENTS))
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=list(LOOPS))
    parser.add_argument("--profile", choices=list(CLIENTS), help="cProfile one column instead")
    args = parser.parse_args()
    os.environ.setdefault("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with loopback_nginx() as base:
        print(
            f"nginx on {base}; {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
            f"aiohttp {aiohttp.__version__}; httpx {httpx.__version__}",
            file=sys.stderr,
        )
        if args.profile:
            with asyncio.Runner(loop_factory=LOOPS[args.loops[0]]) as runner:
                runner.run(profile(args, base))
        else:
            run(args, base)


if __name__ == "__main__":
    main()
