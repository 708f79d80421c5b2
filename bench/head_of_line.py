"""Head-of-line: does a slow host hold up calls to a fast one in the same transport?

    uv run python bench/head_of_line.py                 # 2,000 calls on a 2 s host
    uv run python bench/head_of_line.py --slow-calls 3000 --slow-seconds 1

Starts a loopback server in a child process with two ports: one answers after `--slow-seconds`,
the other at once. Starts `--slow-calls` calls to the slow port through one `Http1Transport`
(default limits), then, while they wait, calls the fast port one at a time for
`--duration` seconds and prints the fast calls' latency (p50, p99, max) in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

SERVER = """
import asyncio, sys
slow_seconds = float(sys.argv[1])
OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
async def serve(reader, writer, delay):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            if delay:
                await asyncio.sleep(delay)
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    slow = await asyncio.start_server(lambda r, w: serve(r, w, slow_seconds), "127.0.0.1", 0, backlog=4096)
    fast = await asyncio.start_server(lambda r, w: serve(r, w, 0), "127.0.0.1", 0, backlog=4096)
    print(slow.sockets[0].getsockname()[1], fast.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def measure(slow_url: str, fast_url: str, slow_calls: int, duration: float) -> list[float]:
    from actionrt.http import Http1Transport, HttpRequest

    transport = Http1Transport()
    slow = [asyncio.create_task(transport.send(HttpRequest("GET", slow_url))) for _ in range(slow_calls)]
    await asyncio.sleep(0.2)  # the slow host's pool is full and its line is long
    latencies: list[float] = []
    stop = time.perf_counter() + duration
    while time.perf_counter() < stop:
        started = time.perf_counter()
        answer = await transport.send(HttpRequest("GET", fast_url))
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status != 200:
            raise RuntimeError(answer.status)
    for task in slow:
        task.cancel()
    await asyncio.gather(*slow, return_exceptions=True)
    await transport.aclose()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow-calls", type=int, default=2000)
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of fast calls")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.slow_seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        slow_port, fast_port = server.stdout.readline().split()
        latencies = asyncio.run(
            measure(
                f"http://127.0.0.1:{slow_port}/",
                f"http://127.0.0.1:{fast_port}/",
                args.slow_calls,
                args.duration,
            )
        )
    finally:
        server.terminate()
        server.wait()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(
        f"{args.slow_calls} calls waiting on a {args.slow_seconds:g} s host; "
        f"{len(latencies)} calls to a fast host: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
