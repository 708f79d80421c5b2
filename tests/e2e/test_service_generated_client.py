"""A client generated from the service's /openapi.json works: openapi-python-client (dev group)
generates one with no warning, and its functions list, create and invoke an action against the
service on loopback (uvicorn), the action calling a loopback stand-in."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from threaded_server import serving

from actionrt.service import create_app
from actionrt.service.protocol import uvicorn_config
from actionrt.standin import StandIn

pytestmark = pytest.mark.slow  # the generator takes ~15 s


@pytest.fixture
def transport_kind() -> str:
    """One run: the service's transport is not what this test is about."""
    return "http1"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The service's URL and the stand-in's."""
    standin = StandIn()
    await standin.start()
    app = create_app(
        tmp_path / "store.db",
        allow_private_network=True,
        secret_key=Fernet.generate_key(),
        entry_points=False,
    )
    async with serving(uvicorn_config(app, host="127.0.0.1", port=0, log_level="warning")) as (url, _):
        yield url, standin.base_url
    await standin.stop()


@pytest.fixture
def generated_package(tmp_path: Path) -> Iterator[Path]:
    """Where the client is generated; its modules are forgotten afterwards."""
    yield tmp_path / "actionrt_client"
    sys.path[:] = [p for p in sys.path if p != str(tmp_path)]
    for name in [m for m in sys.modules if m == "actionrt_client" or m.startswith("actionrt_client.")]:
        del sys.modules[name]


async def test_a_generated_client_lists_creates_and_invokes(
    live: tuple[str, str], generated_package: Path
) -> None:
    service, standin = live
    config = generated_package.parent / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run over the generated code
    generator = Path(sys.executable).with_name("openapi-python-client")
    process = await asyncio.create_subprocess_exec(
        *(str(generator), "generate", "--url", f"{service}/openapi.json", "--meta", "none"),
        *("--output-path", str(generated_package), "--config", str(config), "--fail-on-warning"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    sys.path.insert(0, str(generated_package.parent))
    client_module: Any = importlib.import_module("actionrt_client")
    list_actions: Any = importlib.import_module("actionrt_client.api.actions.list_actions")
    create_action: Any = importlib.import_module("actionrt_client.api.actions.create_action")
    invoke: Any = importlib.import_module("actionrt_client.api.calls.invoke")
    models: Any = importlib.import_module("actionrt_client.models")

    async with client_module.Client(base_url=service, raise_on_unexpected_status=True) as client:
        assert (await list_actions.asyncio(client=client)).actions == []
        document = {
            "name": "greet",
            "endpoint": {"url": f"{standin}/v1/greet", "method": "POST"},
            "request": {"sample": {"email": "ada@example.com"}, "variables": {"email": {"label": "Email"}}},
        }
        created = await create_action.asyncio_detailed(
            client=client, body=models.ActionDefinition.from_dict(document)
        )
        assert created.status_code == 201, created.content
        assert created.parsed.action["name"] == "greet"
        listed = await list_actions.asyncio(client=client)
        assert [(a.name, a.method, a.url) for a in listed.actions] == [
            ("greet", "POST", f"{standin}/v1/greet")
        ]
        body = models.CallBody.from_dict({"params": {"email": "grace@example.com"}})
        result = await invoke.asyncio(name="greet", client=client, body=body)
        assert isinstance(result, models.CallResult), result
        assert (result.status, result.ok, result.http_status, result.attempts) == ("http_200", True, 200, 1)
        assert result.call_id
        bad = await invoke.asyncio(
            name="greet", client=client, body=models.CallBody.from_dict({"params": {}})
        )
        assert bad.status == "internalError" and "email" in bad.error
        queued = await invoke.asyncio_detailed(name="greet", client=client, body=body, async_=True)
        assert queued.status_code == 409  # no --redis: a problem the client parses
        assert isinstance(queued.parsed, models.ProblemDetails) and "--redis" in queued.parsed.detail
        missing = await invoke.asyncio_detailed(name="nothere", client=client, body=body)
        assert missing.status_code == 404 and isinstance(missing.parsed, models.ProblemDetails)
