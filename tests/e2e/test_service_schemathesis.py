"""The service's OpenAPI document against its behaviour: schemathesis with every check, as a
client generator would use the document, against the service on loopback (uvicorn, the real
store), the actions' endpoints pointed at a loopback stand-in with private networks allowed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from threaded_server import serving

from actionrt.fleet.redis_streams import QueueKeys
from actionrt.guard import DestinationPolicy
from actionrt.http import Http1Transport, HttpRequest, HttpResponse
from actionrt.service import create_app
from actionrt.service.protocol import uvicorn_config
from actionrt.standin import StandIn

HERE = Path(__file__).parent
REDIS_URL = "redis://127.0.0.1:6379/0"
CONFIG = HERE / "schemathesis.toml"


@pytest.fixture
def transport_kind() -> str:
    """One run: the service's transport is not what this test is about."""
    return "http1"


class ToStandIn:
    """The service's transport, with every action's call sent to the stand-in (same path and
    query): the actions schemathesis creates name hosts of their own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.inner = Http1Transport(policy=DestinationPolicy(allow_private_network=True))

    async def send(self, request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.url)
        target = self.base_url + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return await self.inner.send(dataclasses.replace(request, url=target))

    async def aclose(self) -> None:
        await self.inner.aclose()


class Errors(logging.Handler):
    """Every error (and traceback) the service logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str | None]:
    """ "fleet": a queue on the real Redis served by a real `actionrt worker` (it knows none of
    the actions schemathesis creates: their queued calls end at once, as results saying so),
    for `serve --redis`'s async invoke and `GET /calls/{callId}`; "embedded": no Redis."""
    if request.param == "embedded":
        yield None
        return
    queue = f"schemathesis-{uuid.uuid4().hex[:12]}"
    (tmp_path / "actions").mkdir()
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "from actionrt.cli import main; main()", "worker", str(tmp_path / "actions")),
        *("--redis", REDIS_URL, "--queue", queue),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert worker.stderr is not None
    async with asyncio.timeout(60):
        while b"serving" not in (line := await worker.stderr.readline()):
            assert line, "the worker ended before serving"
    drain = asyncio.create_task(worker.stderr.read())  # its log must not fill the pipe
    yield queue
    worker.terminate()
    await worker.wait()
    await drain
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=QueueKeys(queue).base + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def service_url(tmp_path: Path, fleet: str | None) -> AsyncIterator[str]:
    standin = StandIn()
    await standin.start()
    app = create_app(
        tmp_path / "store.db",
        allow_private_network=True,
        secret_key=Fernet.generate_key(),
        entry_points=False,
        transport=ToStandIn(standin.base_url),
        redis_url=REDIS_URL if fleet is not None else None,
        queue=fleet or "default",
    )
    config = uvicorn_config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    async with serving(config) as (url, _):
        yield url
    await standin.stop()


@pytest.mark.parametrize("fleet", ["embedded", "fleet"], indirect=True)
async def test_the_document_holds_under_schemathesis_with_every_check(
    service_url: str, tmp_path: Path
) -> None:
    errors = Errors()
    loggers = [logging.getLogger(name) for name in ("actionrt", "uvicorn", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{service_url}/openapi.json",
            "--checks",
            "all",
            # A script's request: what no cross-site form can send (security.py's CSRF rule).
            "--header",
            "X-CSRF-Token: schemathesis",
            "--max-examples",
            "20",
            "--seed",
            "7",
            # One worker: hypothesis describes filters with ast.parse, which CPython 3.11 can fail
            # with "AST constructor recursion depth mismatch" when threads parse at once.
            "--workers",
            "1",
            "--report-dir",
            str(tmp_path / "report"),
            cwd=tmp_path,  # its cache goes there, not into the checkout
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )
        output, _ = await asyncio.wait_for(
            process.communicate(), timeout=300
        )  # a loaded 2-core box: ~55 s idle
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text and "failure" not in text.split("SUMMARY")[-1].lower(), text[-3000:]
    assert errors.records == [], [r.getMessage() for r in errors.records]
