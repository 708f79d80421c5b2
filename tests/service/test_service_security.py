"""Who may talk to the service: Host check, API token, console session, CSRF."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from service_support import action, client_for, make_app

from actionrt.service.security import CSRF_COOKIE, is_loopback


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


async def test_a_loopback_service_refuses_other_host_names(tmp_path: Path) -> None:
    app = make_app(tmp_path, examples=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://attacker.example:8700") as rebinding:
        answer = await rebinding.get("/actions")
    assert answer.status_code == 403
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8700") as local:
        assert (await local.get("/actions")).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["127.attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example", "127.0.0.1x"],
)
async def test_a_rebinding_name_that_only_starts_like_loopback_is_refused(tmp_path: Path, host: str) -> None:
    # A page at http://127.0.0.1.attacker.example:8700/ whose name is rebound to 127.0.0.1 would
    # otherwise read and drive the API as a same-origin page.
    app = make_app(tmp_path, examples=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}:8700") as rebinding:
        assert (await rebinding.get("/actions")).status_code == 403
        written = await rebinding.post("/actions", json=action(), headers={"origin": f"http://{host}:8700"})
        assert written.status_code == 403


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("LocalHost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.attacker.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_is_loopback_takes_only_loopback_addresses_and_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_cross_origin_writes_are_refused(service) -> None:
    forged = await service.client.post(
        "/actions", json=action(), headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"}
    )
    assert forged.status_code == 403
    same_site_port = await service.client.post(
        "/actions", json=action(), headers={"origin": "http://127.0.0.1:3000"}
    )
    assert same_site_port.status_code == 403
    assert (await service.client.get("/actions/notify")).status_code == 404
    same_origin = await service.client.post(
        "/actions",
        json=action(),
        headers={"origin": "http://127.0.0.1:8700", "sec-fetch-site": "same-origin"},
    )
    assert same_origin.status_code == 201


async def test_a_browser_holding_the_console_cookie_must_repeat_the_csrf_token(service) -> None:
    page = await service.client.get("/console/actions")
    assert CSRF_COOKIE in page.cookies
    token = csrf_of(page)
    without = await service.client.post("/actions", json=action())
    assert without.status_code == 403
    wrong = await service.client.post("/actions", json=action(), headers={"x-csrf-token": "nope"})
    assert wrong.status_code == 403
    right = await service.client.post("/actions", json=action(), headers={"x-csrf-token": token})
    assert right.status_code == 201


async def test_pages_forbid_framing_and_caching(service) -> None:
    page = await service.client.get("/console/actions")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]


@pytest.fixture
async def guarded(tmp_path: Path):
    app = make_app(tmp_path, api_token="t0ken-for-tests", loopback_only=False, examples=None)
    async with client_for(app) as client:
        yield client
    await app.state.service.calls.aclose()


async def test_with_a_token_the_api_needs_it_as_a_bearer(guarded: httpx.AsyncClient) -> None:
    refused = await guarded.get("/actions")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert (await guarded.get("/actions", headers={"authorization": "Bearer wrong"})).status_code == 401
    ok = await guarded.get("/actions", headers={"authorization": "Bearer t0ken-for-tests"})
    assert ok.status_code == 200
    # A bearer request is not a browser's: no CSRF token is asked for.
    created = await guarded.post(
        "/actions", json=action(), headers={"authorization": "Bearer t0ken-for-tests"}
    )
    assert created.status_code == 201
    assert (await guarded.get("/openapi.json")).status_code == 200
    assert (await guarded.get("/healthz")).status_code == 200


async def test_with_a_token_the_console_signs_in_with_it(guarded: httpx.AsyncClient) -> None:
    redirected = await guarded.get("/console/actions")
    assert (redirected.status_code, redirected.headers["location"]) == (303, "/console/login")
    login = await guarded.get("/console/login")
    token = csrf_of(login)
    wrong = await guarded.post("/console/login", data={"csrf_token": token, "token": "nope"})
    assert wrong.status_code == 401
    forged = await guarded.post("/console/login", data={"csrf_token": "forged", "token": "t0ken-for-tests"})
    assert forged.status_code == 403
    signed = await guarded.post("/console/login", data={"csrf_token": token, "token": "t0ken-for-tests"})
    assert signed.status_code == 303
    assert (await guarded.get("/console/actions")).status_code == 200
    # The session cookie is ambient: writes with it need the CSRF token.
    assert (await guarded.post("/actions", json=action())).status_code == 403
    ok = await guarded.post("/actions", json=action(), headers={"x-csrf-token": token})
    assert ok.status_code == 201


def test_serving_beyond_loopback_without_a_token_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ACTIONRT_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="ACTIONRT_API_TOKEN"):
        make_app(tmp_path, loopback_only=False)


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/actions", b'{"name": "x"}', "text/plain"),  # fetch(..., {mode: "no-cors"})
        ("POST", "/actions/loyaltyUpdate/duplicate", b"", "application/x-www-form-urlencoded"),
        ("POST", "/actions/loyaltyUpdate/invoke", b"params=x", "multipart/form-data; boundary=b"),
        ("DELETE", "/actions/crmContactUpdate", b"", None),
    ],
)
async def test_a_write_with_no_origin_and_no_cookie_needs_a_json_body_or_the_csrf_header(
    service, method: str, path: str, body: bytes, content_type: str | None
) -> None:
    # What a cross-site form (or a browser that leaves Origin out) can send: refused untouched.
    headers = {"content-type": content_type} if content_type else {}
    before = (await service.client.get("/actions")).json()
    forged = await service.client.request(method, path, content=body, headers=headers)
    assert forged.status_code == 403
    assert "JSON body" in forged.json()["detail"]
    assert (await service.client.get("/actions")).json() == before
    # A script says so with a JSON content type, or any X-CSRF-Token (no form can set either).
    scripted = await service.client.request(method, path, headers={"x-csrf-token": "script"})
    assert scripted.status_code != 403


async def test_over_tls_every_cookie_is_secure_and_over_plain_http_none_needs_to_be(tmp_path: Path) -> None:
    app = make_app(tmp_path, api_token="t0ken-for-tests", loopback_only=False, examples=None)
    transport = httpx.ASGITransport(app=app)
    for scheme, secure in (("https", True), ("http", False)):
        async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1:8700") as browser:
            login = await browser.get("/console/login")
            assert ("; Secure" in login.headers["set-cookie"]) is secure
            signed = await browser.post(
                "/console/login", data={"csrf_token": csrf_of(login), "token": "t0ken-for-tests"}
            )
            session = [c for c in signed.headers.get_list("set-cookie") if c.startswith("actionrt_session=")]
            assert len(session) == 1 and ("; Secure" in session[0]) is secure
            assert (await browser.get("/console/actions")).status_code == 200
    await app.state.service.calls.aclose()


async def test_a_new_api_token_signs_every_browser_out(tmp_path: Path) -> None:
    first = make_app(tmp_path / "a", api_token="first-token", loopback_only=False, examples=None)
    async with client_for(first) as browser:
        login = await browser.get("/console/login")
        await browser.post("/console/login", data={"csrf_token": csrf_of(login), "token": "first-token"})
        assert (await browser.get("/console/actions")).status_code == 200
        cookies = dict(browser.cookies)
    await first.state.service.calls.aclose()
    rotated = make_app(tmp_path / "b", api_token="second-token", loopback_only=False, examples=None)
    async with client_for(rotated) as browser:
        browser.cookies.update(cookies)
        assert (await browser.get("/console/actions")).status_code == 303
        assert (await browser.get("/actions")).status_code == 401
    await rotated.state.service.calls.aclose()
