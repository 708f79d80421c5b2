"""Per-call cost of a call's deadline: `asyncio.timeout` against `actionrt.deadlines`.

    uv run python bench/deadlines.py [--concurrency 64] [--calls 2000] [--rounds 5]

Each of `concurrency` tasks runs `calls` blocks of one `await asyncio.sleep(0)` (a stand-in for
the send) under a 10 s deadline; the CPU time per block, minus the same loop without a
deadline, is the deadline's cost. Best of `rounds`, rounds interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from actionrt.deadlines import Deadlines


async def bare(calls: int) -> None:
    for _ in range(calls):
        await asyncio.sleep(0)


async def with_asyncio_timeout(calls: int) -> None:
    for _ in range(calls):
        async with asyncio.timeout(10):
            await asyncio.sleep(0)


def with_deadlines(deadlines: Deadlines) -> Callable[[int], Awaitable[None]]:
    async def run(calls: int) -> None:
        for _ in range(calls):
            with deadlines.start(10):
                await asyncio.sleep(0)

    return run


async def measure(body: Callable[[int], Awaitable[None]], concurrency: int, calls: int) -> float:
    started = time.process_time()
    await asyncio.gather(*(body(calls) for _ in range(concurrency)))
    return (time.process_time() - started) / (concurrency * calls) * 1e6


async def main(concurrency: int, calls: int, rounds: int) -> None:
    bodies = {
        "no deadline": bare,
        "asyncio.timeout": with_asyncio_timeout,
        "actionrt.deadlines": with_deadlines(Deadlines()),
    }
    best = dict.fromkeys(bodies, float("inf"))
    for _ in range(rounds):
        for name, body in bodies.items():
            best[name] = min(best[name], await measure(body, concurrency, calls))
    base = best["no deadline"]
    print(f"concurrency {concurrency}, {calls} blocks per task, best of {rounds}")
    for name, cpu in best.items():
        print(f"  {name:<20} {cpu:6.2f} CPU-µs per block   deadline {cpu - base:5.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.calls, args.rounds))
