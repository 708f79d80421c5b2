"""Calls/s through the fleet's queue (Redis Streams) with 1 and 2 worker processes, beside
in-process `Runtime.invoke`, one run, against nginx on loopback (see bench/README.md).

    uv run python bench/fleet.py [--calls 20000] [--redis redis://127.0.0.1:6379/0] [--loop asyncio]
                                 [--only submit_many|submit]

The submitter queues windows of 2,000 calls, two in flight: by default once with
`Queue.submit_many` + `Queue.results` (a journey node's batch), then once with one
`Queue.submit` + one `Queue.result(wait=)` per call (each its own task).

End to end: from the first submit to the last result, the submitter in this
process, the workers in their own (`actionrt worker`), Redis and nginx sharing the machine.
CPU-µs per call: this process's and the workers' CPU time over the calls; the queue's added
CPU is that minus the CPU of an in-process invoke with the limits in Redis (what a worker pays
per call besides the queue; Redis's own CPU is printed apart), and
the Redis commands per call come from `INFO commandstats` (commands run by a script included;
`evalsha` is one round trip for a whole batch). The workers log to a file, as in production
(one line per call): a pipe read by this busy process would slow them. This process (the
submitter and the in-process invoke) runs on the loop the workers use (uvloop when installed)
unless `--loop asyncio`.

To measure another checkout of actionrt with this bench, put its `src` first on PYTHONPATH: the
workers inherit it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis
from throughput import bench_action, bench_params, loopback_nginx, process_cpu

import actionrt
from actionrt.fleet import Queue
from actionrt.limits import Limits
from actionrt.limits.redis_backend import RedisBackend
from actionrt.loops import best_loop_factory
from actionrt.runtime import Runtime

WINDOW = 2000  # calls submitted and awaited at a time by the submitter


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def in_process(folder: Path, calls: int, redis_url: str | None = None) -> tuple[float, float]:
    """In-process invoke; with `redis_url`, counting the default capping in Redis as a worker
    does (`Limits` on the Redis backend)."""
    limits = (
        Limits((), (), backend=RedisBackend(redis_url, prefix=f"bench-{uuid.uuid4().hex[:8]}:"))
        if redis_url is not None
        else None
    )
    runtime = Runtime.from_path(folder, allow_private_network=True, limits=limits)
    async with runtime:
        semaphore = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with semaphore:
                result = await runtime.invoke("loyaltyBench", bench_params(i))
                if not result.ok:
                    raise RuntimeError(result.status, result.error)

        await asyncio.gather(*(one(i) for i in range(500)))  # warm-up: pools, token
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return calls / (time.perf_counter() - wall), (time.process_time() - cpu) / calls * 1e6


async def start_workers(folder: Path, redis_url: str, queue: str, count: int) -> list[Any]:
    workers = []
    for index in range(count):
        log = folder.parent / f"{folder.name}-{queue}-{index}.log"  # beside the actions, not among them
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from actionrt.cli import main; main()",
            "worker",
            str(folder),
            "--redis",
            redis_url,
            "--queue",
            queue,
            "--allow-private-network",
            "--no-watch",
            stderr=log.open("wb"),
        )
        while b"serving" not in log.read_bytes():
            if process.returncode is not None:
                sys.exit(f"a worker did not start:\n{log.read_text()}")
            await asyncio.sleep(0.05)  # a bench polling a log file, not a synchronisation under test
        workers.append(process)
    return workers


async def command_counts(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def through_queue(
    folder: Path, redis_url: str, calls: int, count: int, per_call: bool = False
) -> dict[str, Any]:
    queue_name = f"bench-{uuid.uuid4().hex[:8]}"
    workers = await start_workers(folder, redis_url, queue_name, count)
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with Queue(redis_url, name=queue_name, actions=folder, allow_private_network=True) as queue:

            async def window(start: int, size: int) -> None:
                if per_call:  # one submit and one result per call, as many tasks
                    ids = await asyncio.gather(
                        *(queue.submit("loyaltyBench", bench_params(i)) for i in range(start, start + size))
                    )
                    results = await asyncio.gather(*(queue.result(i, wait=60) for i in ids))
                else:  # a journey node's batch: one submit_many, one results
                    ids = await queue.submit_many(
                        "loyaltyBench", (bench_params(i) for i in range(start, start + size))
                    )
                    results = await queue.results(ids, wait=60)
                bad = [r for r in results if r is None or not r.ok]
                if bad:
                    raise RuntimeError(f"{len(bad)} calls failed: {bad[0]}")

            await window(0, 500)  # warm-up: pools, token, scripts
            worker_cpu = sum(process_cpu(w.pid) for w in workers)
            redis_before = await redis_cpu(client)
            commands_before = await command_counts(client)
            wall, cpu = time.perf_counter(), time.process_time()
            # two windows in flight: the submitter keeps the workers fed
            sizes = [(s, min(WINDOW, calls - s)) for s in range(0, calls, WINDOW)]
            pending: set[asyncio.Task[None]] = set()
            for start, size in sizes:
                if len(pending) >= 2:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.add(asyncio.create_task(window(start, size)))
            await asyncio.gather(*pending)
            seconds = time.perf_counter() - wall
            submitter = time.process_time() - cpu
            worker_cpu = sum(process_cpu(w.pid) for w in workers) - worker_cpu
            redis_used = await redis_cpu(client) - redis_before
            commands = await command_counts(client)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            await worker.wait()
        keys = [k async for k in client.scan_iter(match=f"actionrt:{{{queue_name}}}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    commands_per_call = {
        name: (n - commands_before.get(name, 0)) / calls
        for name, n in commands.items()
        if n - commands_before.get(name, 0) >= calls / 100 and name != "info"
    }
    return {
        "commands": dict(sorted(commands_per_call.items(), key=lambda item: -item[1])),
        "rate": calls / seconds,
        "submitter_us": submitter / calls * 1e6,
        "worker_us": worker_cpu / calls * 1e6,
        "redis_us": redis_used / calls * 1e6,
    }


async def main(calls: int, redis_url: str, batched: bool = True, per_call: bool = True) -> None:
    with loopback_nginx() as base:
        folder = Path(tempfile.mkdtemp(prefix="actionrt-fleet-bench-"))
        try:
            (folder / "bench.json").write_text(json.dumps(bench_action(base)))
            load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
            print(
                f"nginx on {base}; {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
                f"{type(asyncio.get_running_loop()).__module__.split('.')[0]} loop; {calls} calls; "
                f"load average {load}; actionrt from {Path(actionrt.__file__).parent.parent}"
            )
            rate, local_us = await in_process(folder, calls)
            print(f"in-process invoke, concurrency 64:  {rate:8,.0f} calls/s  {local_us:6.0f} CPU-µs/call")
            rate, invoke_us = await in_process(folder, calls, redis_url)
            print(
                f"  the same, limits in Redis:         {rate:8,.0f} calls/s  {invoke_us:6.0f} CPU-µs/call "
                "(what a worker pays per call besides the queue)"
            )
            runs = [(1, False), (2, False)] if batched else []
            runs += [(1, True), (2, True)] if per_call else []
            for count, one_by_one in runs:
                m = await through_queue(folder, redis_url, calls, count, one_by_one)
                total = m["submitter_us"] + m["worker_us"]
                how = "submit/result" if one_by_one else "submit_many  "
                print(
                    f"queue, {how}, {count} worker(s):  {m['rate']:8,.0f} calls/s  "
                    f"{total:6.0f} CPU-µs/call (submitter {m['submitter_us']:.0f}, workers "
                    f"{m['worker_us']:.0f}; queue's own {total - invoke_us:.0f}; Redis {m['redis_us']:.0f})"
                )
                shown = ", ".join(f"{name} {n:.3g}" for name, n in m["commands"].items())
                print(f"    Redis commands per call: {shown}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            for log in folder.parent.glob(f"{folder.name}-*.log"):
                log.unlink()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--loop", choices=("best", "asyncio"), default="best")
    parser.add_argument(
        "--only", choices=("submit_many", "submit"), help="only the batched API, or only one submit per call"
    )
    args = parser.parse_args()
    factory = best_loop_factory() if args.loop == "best" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args.calls, args.redis, args.only != "submit", args.only != "submit_many"))
