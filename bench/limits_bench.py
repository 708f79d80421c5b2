"""Cost of one admission on the call path: µs per `await limiter.admit()` (and friends).

    uv run python bench/limits_bench.py [--calls 200000] [--redis redis://127.0.0.1:6379/0]
    uv run python bench/limits_bench.py --end-to-end --redis redis://127.0.0.1:6379/0

Memory backend figures are CPU-bound and stable; the Redis figure is one round trip on loopback.
`--end-to-end`: whole calls (`Runtime.invoke`) against nginx on loopback at concurrency 64, with
the limits in memory and in Redis, in one run (rounds interleaved): calls/s and CPU-µs per call.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from actionrt.expressions import ExpressionEnvironment
from actionrt.limits import Limits, MemoryBackend

CAPPING = {
    "url": "https://api.example.com/v1/*",
    "methods": ["POST"],
    "services": {"action": {"rating": {"maxCallsCount": 10_000_000, "periodInMs": 60_000}}},
}
THROTTLING = {"urlPattern": "https://api.example.com/v1/*", "methods": ["POST"], "maxThroughput": 5000}


class SteppingClock:
    """Advances 1 ms per reading: throttling at 5,000/s never has to queue."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


async def per_call(label: str, calls: int, step: Callable[[], Awaitable[object]]) -> None:
    for _ in range(min(calls, 2000)):  # warm up
        await step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<58} {wall / calls * 1e6:7.2f} µs/call  ({cpu / calls * 1e6:.2f} CPU-µs)")


async def main(calls: int, redis_url: str | None) -> None:
    default_only = Limits().endpoint("POST", "https://api.example.com/v1/send")
    await per_call("admit, default per-host cap only", calls, default_only.admit)

    with_rule = Limits(capping_rules=[CAPPING]).endpoint("POST", "https://api.example.com/v1/send")
    await per_call("admit, default cap + one capping rule", calls, with_rule.admit)

    throttled = Limits(
        capping_rules=[CAPPING],
        throttling_rules=[THROTTLING],
        backend=MemoryBackend(clock=SteppingClock()),
    ).endpoint("POST", "https://api.example.com/v1/send")
    await per_call("admit, cap + throttling rule (not queueing)", calls, throttled.admit)

    limits = Limits(capping_rules=[CAPPING])
    url = "https://api.example.com/v1/users/42/messages"

    async def dynamic() -> object:
        return await limits.endpoint("POST", url).admit()

    await per_call("endpoint(url) cache hit + admit (dynamic path)", calls, dynamic)

    counter = iter(range(10**9))

    async def miss() -> object:
        return limits.endpoint("POST", f"https://api.example.com/v1/users/{next(counter)}")

    await per_call("endpoint(url) cache miss (rule matching)", min(calls, 50_000), miss)

    env = ExpressionEnvironment()
    fields = [env.compile("{{ profile." + name + " }}") for name in ("a", "b", "c", "d", "e")]
    context = {"profile": {"a": "ada@example.com", "b": 10, "c": True, "d": "fr", "e": [1, 2]}}

    async def five_mappings() -> object:
        return [field.evaluate(context) for field in fields]

    await per_call("expressions: five {{ profile.x }} mappings", min(calls, 50_000), five_mappings)

    if redis_url:
        from actionrt.limits.redis_backend import RedisBackend

        backend = RedisBackend(redis_url, prefix=f"actionrt:bench:{uuid.uuid4().hex}:")
        redis_limits = Limits(capping_rules=[CAPPING], backend=backend)
        limiter = redis_limits.endpoint("POST", "https://api.example.com/v1/send")
        await per_call("admit on Redis (one Lua script, loopback)", min(calls, 20_000), limiter.admit)
        await redis_limits.aclose()


def end_to_end(redis_url: str, concurrency: int, duration: float, rounds: int) -> None:
    """Whole calls with each backend, through the throughput bench's nginx and action."""
    import json
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import Client, bench_action, loopback_nginx, measure_all

    from actionrt.limits.redis_backend import RedisBackend
    from actionrt.runtime import Runtime

    def column(name: str, backend: Callable[[], object]) -> Callable[[], Client]:
        def factory() -> Client:
            state: dict[str, Runtime] = {}

            async def open_(base: str) -> Callable[[int], Awaitable[None]]:
                folder = Path(tempfile.mkdtemp(prefix="actionrt-limits-bench-"))
                (folder / "bench.json").write_text(json.dumps(bench_action(base)))
                limits = Limits(capping_rules=[{**CAPPING, "url": base + "/v1/*"}], backend=backend())  # type: ignore[arg-type]
                runtime = state["r"] = Runtime.from_path(folder, allow_private_network=True, limits=limits)
                shutil.rmtree(folder)
                await runtime.open()

                async def call(i: int) -> None:
                    result = await runtime.invoke(
                        "loyaltyBench",
                        {
                            "customer.email": f"u{i}@example.com",
                            "customer.points": i,
                            "order.id": f"o-{i}",
                            "order.total": 1.5,
                            "order.express": True,
                        },
                    )
                    if not result.ok:
                        raise RuntimeError(result.status, result.error)

                return call

            async def close() -> None:
                await state["r"].aclose()

            return Client(name, open_, close)

        return factory

    prefix = f"actionrt:bench:{uuid.uuid4().hex}:"
    factories = [
        column("memory", MemoryBackend),
        column("redis", lambda: RedisBackend(redis_url, prefix=prefix)),
    ]
    with loopback_nginx() as base:
        best = asyncio.run(measure_all(factories, base, concurrency, duration, rounds))
    for name, measure in best.items():
        rate, cpu = f"{measure.rate:9.0f} calls/s", f"{measure.cpu_us:6.0f} CPU-µs/call"
        print(f"{name:<8} {rate}  {cpu}  errors {measure.errors}")
    ratio = best["redis"].rate / best["memory"].rate
    print(f"redis / memory: {ratio:.2f} of the calls/s at concurrency {concurrency}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--redis", default=None, help="also measure the Redis backend")
    parser.add_argument("--end-to-end", action="store_true", help="whole calls, memory vs Redis")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=3.0)
    parser.add_argument("-r", "--rounds", type=int, default=2)
    arguments = parser.parse_args()
    if arguments.end_to_end:
        end_to_end(
            arguments.redis or "redis://127.0.0.1:6379/0",
            arguments.concurrency,
            arguments.duration,
            arguments.rounds,
        )
    else:
        asyncio.run(main(arguments.calls, arguments.redis))
