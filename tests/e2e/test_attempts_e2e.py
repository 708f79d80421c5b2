"""Honest attempt counts: `attempts` is what the endpoint received, `sent` says whether anything
reached it. Thousands of calls against a slow endpoint in its own process, most of which never
get a connection before their deadline."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PARAMS, action_file, runtime_for

from actionrt.guard import DestinationPolicy
from actionrt.http import AiohttpTransport, Http1Transport, HttpRequest, PoolLimits, Transport
from actionrt.results import NOT_SENT

CALLS = 2000
PER_HOST = 50
ANSWER_AFTER = 0.6  # seconds: one round of PER_HOST answers fits in the 1 s deadline, not two

# Answers every request after ANSWER_AFTER seconds and counts what it received; GET /count
# answers at once with that count.
SLOW_ENDPOINT = """
import asyncio, sys
received = 0
async def serve(reader, writer):
    global received
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET /count "):
                body = str(received).encode()
            else:
                received += 1
                await asyncio.sleep(float(sys.argv[1]))
                body = b"{}"
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@pytest.fixture
def slow_endpoint() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_ENDPOINT, str(ANSWER_AFTER)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{process.stdout.readline().strip()}"
    finally:
        process.terminate()
        process.wait()


def transport(kind: str) -> Transport:
    policy = DestinationPolicy(allow_private_network=True)
    if kind == "aiohttp":
        return AiohttpTransport(policy=policy, limit_per_host=PER_HOST)
    return Http1Transport(policy=policy, limits=PoolLimits(per_host=PER_HOST))


async def test_attempts_count_what_the_endpoint_received(
    slow_endpoint: str, tmp_path: Path, transport_kind: str
) -> None:
    action_file(tmp_path, slow_endpoint + "/slow", timeout=1)
    async with runtime_for(tmp_path, transport=transport(kind := transport_kind)) as runtime:
        results = await asyncio.gather(*(runtime.invoke("loyaltyUpdate", PARAMS) for _ in range(CALLS)))
        count = await runtime.transport.send(HttpRequest("GET", slow_endpoint + "/count"))
    received = int(count.content)
    attempts = sum(r.attempts for r in results)
    # (On a loaded machine aiohttp may open no connection within the second: still honest.)
    assert abs(attempts - received) <= received // 100, (attempts, received)
    unsent = [r for r in results if not r.sent]
    assert len(unsent) > CALLS // 2  # most calls never got a connection
    host = slow_endpoint.removeprefix("http://")
    assert all(r.status == "timedout" and r.error_code == NOT_SENT and r.attempts == 0 for r in unsent)
    # Most waited for a connection; the few woken just before the deadline were connecting.
    waits = collections.Counter((r.error or "").partition(" to ")[0] for r in unsent)
    assert set(waits) <= {
        "nothing sent within 1 s: no connection free",
        "nothing sent within 1 s: still connecting",
    }
    assert waits["nothing sent within 1 s: no connection free"] > CALLS // 2
    assert all(f" to {host}" in (r.error or "") for r in unsent)
    if kind == "http1":  # it also says how many connections the host has in use
        assert any(f"({PER_HOST} in use)" in (r.error or "") for r in unsent)
    assert all(r.ok or r.status == "timedout" for r in results)
