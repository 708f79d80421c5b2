"""The runtime's own CPU per call: `Runtime.invoke` of throughput.py's action (five variable
fields, a cached custom-auth bearer token, retries and the default capping on) over a canned
in-process transport, so what is timed is everything but the HTTP exchange.

    uv run python bench/call_path.py                 # ~15 s
    uv run python bench/call_path.py --profile       # cProfile of one round instead

Starts nginx as throughput.py does, for the token endpoint only (one token request). Prints
the best and the median round in CPU-µs per call; run it on two commits one after the other
and compare (the figures follow the machine's load; bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from throughput import SUCCESS_BODY, TOKEN_BODY, bench_action, bench_params, loopback_nginx

from actionrt.http import HttpRequest, HttpResponse
from actionrt.runtime import Runtime

ANSWER = SUCCESS_BODY.encode()
TOKEN = TOKEN_BODY.encode()


class Canned:
    """The endpoint's answer, at once (the token endpoint's too, should the token request
    come this way)."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        body = TOKEN if request.url.endswith("/token") else ANSWER
        return HttpResponse(200, {"content-type": "application/json"}, body, request.url)

    async def aclose(self) -> None:
        """Nothing to close."""


async def main(base: str, calls: int, rounds: int, profile: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="actionrt-bench-call-path-"))
    try:
        (folder / "bench.json").write_text(json.dumps(bench_action(base)))
        runtime = Runtime.from_path(folder, allow_private_network=True, transport=Canned())  # type: ignore[arg-type]
    finally:
        shutil.rmtree(folder)
    async with runtime:
        invoke = runtime.invoke

        async def one(i: int) -> None:
            result = await invoke(
                "loyaltyBench",
                bench_params(i),
            )
            if not result.ok:
                raise RuntimeError(result.error)

        for i in range(500):  # the token is fetched and cached; caches fill
            await one(i)
        profiler = cProfile.Profile() if profile else None
        figures = []
        for _ in range(1 if profile else rounds):
            if profiler is not None:
                profiler.enable()
            started = time.process_time()
            for i in range(calls):
                await one(i)
            figures.append((time.process_time() - started) / calls * 1e6)
            if profiler is not None:
                profiler.disable()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    print(
        f"{calls} calls per round, {rounds} rounds: best {min(figures):.1f}, "
        f"median {statistics.median(figures):.1f} CPU-µs per call"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with loopback_nginx() as base:
        asyncio.run(main(base, args.calls, args.rounds, args.profile))
