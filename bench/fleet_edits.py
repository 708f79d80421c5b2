"""How long a console edit takes to reach the fleet: a real `actionrt serve --redis`, N real
`actionrt worker --from-service` processes, an endpoint on loopback (see bench/README.md).

    uv run python bench/fleet_edits.py [--edits 20] [--workers 2] [--redis redis://127.0.0.1:6379/0]

Each edit is a PUT (with If-Match) changing the action's URL; measured from just before the PUT
to the moment every worker has logged its reload (the log line read from its stderr), then one
call through the queue checks the new URL is the one served. The goal: within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from aiohttp import web
from cryptography.fernet import Fernet

from actionrt.fleet import Queue
from actionrt.fleet.redis_streams import QueueKeys

CLI = [sys.executable, "-c", "from actionrt.cli import main; main()"]


class Process:
    """A subprocess whose stderr lines are timed as they arrive."""

    def __init__(self, process: asyncio.subprocess.Process, stream: asyncio.StreamReader) -> None:
        self.process = process
        self.lines: list[tuple[float, str]] = []
        self.line = asyncio.Event()
        self._reader = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.lines.append((time.perf_counter(), raw.decode(errors="replace")))
            self.line.set()

    async def nth(self, text: str, n: int) -> float:
        """When the `n`-th line holding `text` arrived."""
        async with asyncio.timeout(60):
            while True:
                found = [at for at, line in self.lines if text in line]
                if len(found) >= n:
                    return found[n - 1]
                self.line.clear()
                await self.line.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


async def start(arguments: list[str], env: dict[str, str], banner: bool = False) -> Process:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        *arguments,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    return Process(process, process.stdout if banner else process.stderr)


def document(url: str) -> dict[str, Any]:
    return {
        "name": "ping",
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
    }


async def main(edits: int, workers: int, redis_url: str) -> None:
    queue_name = f"bench-edits-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ACTIONRT_SECRET_KEY": Fernet.generate_key().decode(),
        "ACTIONRT_DISABLE_PLUGIN_AUTOLOAD": "1",
    }

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}"
    fleet = ["--redis", redis_url, "--queue", queue_name]
    processes: list[Process] = []
    with tempfile.TemporaryDirectory() as folder:
        try:
            store = ["--store", str(Path(folder) / "store.db"), "--no-examples"]
            serve = ["serve", "--port", "0", *store, "--allow-private-network", *fleet]
            service = await start(serve, env, banner=True)
            processes.append(service)
            await service.nth("actionrt service on", 1)
            found = re.search(r"(http://\S+?)/ ", service.lines[0][1])
            assert found is not None
            api = httpx.AsyncClient(base_url=found.group(1), headers={"X-CSRF-Token": "bench"}, timeout=60)
            assert (await api.post("/actions", json=document(endpoint + "/e0"))).status_code == 201
            fed = [
                await start(["worker", "--from-service", "--allow-private-network", *fleet], env)
                for _ in range(workers)
            ]
            processes += fed
            for worker in fed:
                await worker.nth("serving", 1)
            reached: list[float] = []
            saved: list[float] = []
            async with Queue(redis_url, name=queue_name) as queue:
                for i in range(1, edits + 1):
                    current = await api.get("/actions/ping")
                    started = time.perf_counter()
                    put = await api.put(
                        "/actions/ping",
                        json=document(f"{endpoint}/e{i}"),
                        headers={"If-Match": current.headers["etag"]},
                    )
                    saved.append(time.perf_counter() - started)
                    assert put.status_code == 200, put.text
                    arrivals = [await w.nth("actions reloaded", i) for w in fed]
                    reached.append(max(arrivals) - started)
                    result = await queue.result(await queue.submit("ping", params={"n": i}), wait=30)
                    assert result is not None and result.response == {"path": f"/e{i}"}, result
            await api.aclose()
        finally:
            for process in processes:
                await process.stop()
            await runner.cleanup()
            client = aioredis.Redis.from_url(redis_url)
            keys = [k async for k in client.scan_iter(match=QueueKeys(queue_name).base + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    ms = sorted(r * 1000 for r in reached)
    print(f"{edits} edits, {workers} workers fed by the service; load average {os.getloadavg()[0]:.2f}")
    print(f"PUT answered:                    median {statistics.median(saved) * 1000:7.1f} ms")
    print(
        f"save -> every worker reloaded:   median {statistics.median(ms):7.1f} ms, "
        f"p90 {ms[int(len(ms) * 0.9) - 1]:7.1f} ms, max {ms[-1]:7.1f} ms (goal: 2000 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    options = parser.parse_args()
    asyncio.run(main(options.edits, options.workers, options.redis))
