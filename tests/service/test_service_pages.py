"""The console's pages render from the store (their behaviour is tested in a browser by
test_service_console.py)."""

from __future__ import annotations

from service_support import CAPPING, Endpoint, Service, action


async def test_every_page_renders(service: Service) -> None:
    await service.client.post("/limits/capping", json=CAPPING)
    for path, expected in (
        ("/console/actions", "loyaltyUpdate"),
        ("/console/actions/new", "Add an action"),
        ("/console/actions/storeWeather", "A GET request has no payload."),
        ("/console/journeys", "Welcome series"),
        ("/console/journeys?action=loyaltyUpdate", "Journeys using"),
        ("/console/limits", "https://api.example.com/v1/*"),
    ):
        page = await service.client.get(path)
        assert page.status_code == 200, path
        assert expected in page.text, path
    missing = await service.client.get("/console/actions/ghost")
    assert missing.status_code == 404 and "no action named &#39;ghost&#39;" in missing.text
    home = await service.client.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/console/actions")


async def test_the_pane_shows_stored_secrets_only_as_masked_inputs(service: Service) -> None:
    secret = "apikey-9d1e-typed-once"
    document = {
        "name": "keyed",
        "endpoint": {"url": "https://api.example.com/v1/k", "method": "GET"},
        "authentication": {"type": "apiKey", "name": "appid", "value": secret, "location": "query"},
    }
    assert (await service.client.post("/actions", json=document)).status_code == 201
    page = (await service.client.get("/console/actions/keyed")).text
    assert secret not in page
    assert 'placeholder="•••••••• stored — type to replace"' in page
    assert 'data-credential="authentication.value"' in page


async def test_pages_name_an_icon_the_service_serves(service: Service) -> None:
    # Without one the browser asks for /favicon.ico on every page and logs a 404.
    page = await service.client.get("/console/actions")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text
    icon = await service.client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def test_the_test_section_names_each_credential_to_re_enter(service: Service) -> None:
    document = {
        "name": "keyed",
        "endpoint": {
            "url": "https://api.example.com/v1/x",
            "method": "GET",
            "headers": [{"name": "x-api-key", "value": "k-1"}],
        },
        "authentication": {"type": "basic", "username": "ada", "password": "pw-1"},
    }
    assert (await service.client.post("/actions", json=document)).status_code == 201
    page = (await service.client.get("/console/actions/keyed")).text
    # Named in the pane's words; the path of a sealed secret is not shown.
    assert '<label for="t-credential-1">Password</label>' in page
    assert '<label for="t-credential-2">Header x-api-key</label>' in page
    assert "<code>authentication.password</code>" not in page
    epsilon = (await service.client.get("/console/actions/epsilonSendEmail")).text
    assert ">Token request header Authorization</label>" in epsilon
    assert ">Token request password</label>" in epsilon


async def test_the_pane_counts_a_call_made_a_moment_ago(service: Service, endpoint: Endpoint) -> None:
    document = action(url=f"{endpoint.base_url}/ok")
    assert (await service.client.post("/actions", json=document)).status_code == 201
    called = await service.client.post(
        "/actions/notify/invoke", json={"params": {"email": "ada@example.com"}}
    )
    assert called.json()["status"] == "http_200"
    page = (await service.client.get("/console/actions/notify")).text  # before the writer's batch
    assert '<span class="count">http_200 × 1</span>' in page
