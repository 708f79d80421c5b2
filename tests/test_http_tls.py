"""A private CA, trusted besides the system's: real TLS on loopback, action and token calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from auth_server import Pki, pki, server_ssl_context  # noqa: F401  (pki: a fixture)
from click.testing import CliRunner

from actionrt.http import CA_BUNDLE_ENV, default_ssl_context
from actionrt.runtime import Runtime


@pytest.fixture
async def tls_endpoint(pki: Pki) -> AsyncIterator[str]:  # noqa: F811
    """https://localhost:PORT, its certificate signed by the test's private CA: a token
    endpoint at /token and an action endpoint at /notify that wants the token."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t-1", "expires_in": 3600})

    async def notify(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == "Bearer t-1"
        return web.json_response({"delivered": ok}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/notify", notify)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki))
    await site.start()
    yield f"https://localhost:{runner.addresses[0][1]}"
    await runner.cleanup()


def write_action(folder: Path, base: str) -> None:
    document = {
        "name": "notify",
        "endpoint": {"url": base + "/notify", "method": "POST"},
        "authentication": {
            "type": "customAuthorization",
            "endpoint": base + "/token",
            "method": "POST",
            "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
            "tokenInResponse": "json://access_token",
            "authorizationType": "bearer",
        },
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        "timeout": 5,
    }
    (folder / "notify.json").write_text(json.dumps(document))


async def call(folder: Path, **options: object) -> tuple[str, str | None, dict[str, object] | None]:
    async with Runtime.from_path(folder, plugins=(), allow_private_network=True, **options) as runtime:  # type: ignore[arg-type]
        result = await runtime.invoke("notify", {"email": "b@example.com"})
    return result.status, result.error, result.response


async def test_a_private_ca_is_trusted_for_action_and_token_calls(
    tls_endpoint: str,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    write_action(tmp_path, tls_endpoint)
    status, error, _ = await call(tmp_path)  # the system's CAs alone: the token call fails
    assert status == "internalError" and "token endpoint" in (error or "")
    assert await call(tmp_path, ca_bundle=pki.ca_file) == ("http_200", None, {"delivered": True})


async def test_the_ca_bundle_can_come_from_the_environment(
    tls_endpoint: str,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_action(tmp_path, tls_endpoint)
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca_file))
    assert await call(tmp_path) == ("http_200", None, {"delivered": True})


def test_a_ca_bundle_that_is_not_one_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CA bundle .*missing\.pem: No such file"):
        default_ssl_context(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match=r"CA bundle .*junk\.pem: not a PEM CA bundle"):
        default_ssl_context(tmp_path / "junk.pem")


def test_serve_refuses_an_unreadable_ca_bundle_before_starting(tmp_path: Path) -> None:
    from actionrt.cli import app

    result = CliRunner().invoke(app, ["serve", "--port", "0", "--ca-bundle", str(tmp_path / "nope.pem")])
    assert result.exit_code != 0 and "--ca-bundle: CA bundle" in result.output
    assert "nope.pem: No such file" in result.output
