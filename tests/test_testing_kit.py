"""actionrt.testing: the pytest plugin connector authors use (fixtures, request assertions, replay)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from actionrt import hookimpl
from actionrt.connectors import ConnectorSettings, TemplateConnector
from actionrt.testing import (
    DictSecrets,
    RuntimeFactory,
    assert_request_sent,
    form_fields,
    http_response,
    replay,
)


class PingSettings(ConnectorSettings):
    host: str = "api.example.com"


class Ping(TemplateConnector):
    name = "test.ping"
    description = "POST {message} to /ping with an API key"
    settings_model = PingSettings

    def template(self, settings: PingSettings) -> dict[str, Any]:
        return {
            "endpoint": {"url": f"https://{settings.host}/ping", "method": "POST"},
            "authentication": {"type": "apiKey", "name": "x-api-key", "value": "{{ secrets.PING_KEY }}"},
            "request": {"sample": {"message": "hi"}, "variables": {"message": {"label": "Message"}}},
        }


class PingPlugin:
    @hookimpl
    def register_connectors(self, register: Callable[[Any], None]) -> None:
        register(Ping())


PING_ACTION = {"name": "ping", "connector": "test.ping"}


def test_importing_the_kit_loads_neither_respx_nor_httpx_nor_the_runtime() -> None:
    code = (
        "import sys, actionrt.testing\n"
        "print(sorted(m for m in ('respx', 'httpx', 'actionrt.runtime', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_the_runtime_factory_wires_an_inline_plugin_secrets_and_respx(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post("https://api.example.com/ping").respond(200, json={"pong": True})
    runtime = actionrt_runtime_factory(PING_ACTION, plugins=[PingPlugin()], secrets={"PING_KEY": "k-1"})

    async with runtime:
        result = await runtime.invoke("ping", params={"message": "hello"})

    assert (result.status, result.response) == ("http_200", {"pong": True})
    request = assert_request_sent(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/ping",
        headers={"x-api-key": "k-1"},
        json={"message": "hello"},
    )
    assert request.headers["content-type"].startswith("application/json")


async def test_retries_are_instant_in_the_factorys_runtimes(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = actionrt_respx.post("https://api.example.com/ping")
    route.side_effect = [httpx.Response(503), httpx.Response(503), httpx.Response(200, json={})]
    runtime = actionrt_runtime_factory(PING_ACTION, plugins=[PingPlugin()], secrets={"PING_KEY": "k"})

    waits: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float) -> None:
        waits.append(seconds)
        await sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    async with runtime:
        result = await runtime.invoke("ping", params={"message": "x"})

    assert (result.status, result.attempts) == ("http_200", 3)
    assert waits == []  # no wait between retries; the default backoff would wait 0.2 s + 0.4 s


def test_the_factory_keeps_installed_plugins_out_unless_asked(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    isolated = actionrt_runtime_factory(PING_ACTION, plugins=[PingPlugin()], secrets={"PING_KEY": "k"})
    assert [p.origin for p in isolated.plugins.info.values()] == ["builtin", "inline"]
    assert os.environ["ACTIONRT_DISABLE_PLUGIN_AUTOLOAD"] == "1"


def test_the_factory_takes_a_list_of_actions_and_a_directory(
    actionrt_runtime_factory: RuntimeFactory, tmp_path: Path
) -> None:
    second = {**PING_ACTION, "name": "ping2", "settings": {"host": "other.example.com"}}
    runtime = actionrt_runtime_factory(
        [PING_ACTION, second], plugins=[PingPlugin()], secrets={"PING_KEY": "k"}
    )
    assert sorted(runtime.actions) == ["ping", "ping2"]
    assert runtime.registry.actions["ping2"].definition.endpoint.url == "https://other.example.com/ping"

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "ping.json").write_text(json.dumps(PING_ACTION))
    assert actionrt_runtime_factory(folder, plugins=[PingPlugin()], secrets={"PING_KEY": "k"}).actions == [
        "ping"
    ]


def _send(router: respx.MockRouter, **kwargs: Any) -> None:
    with httpx.Client() as client:
        client.request(**kwargs)


def test_assert_request_sent_matches_on_every_part_given(actionrt_respx: respx.MockRouter) -> None:
    actionrt_respx.route(host="api.example.com").respond(204)
    _send(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/a?x=1",
        json={"k": [1, 2]},
        headers={"Authorization": "Bearer s3cret"},
    )
    _send(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/token",
        content=b"grant_type=password&username=ada",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    first = assert_request_sent(
        actionrt_respx,
        url="https://api.example.com/a",
        params={"x": "1"},
        headers={"authorization": "Bearer s3cret"},
        json={"k": [1, 2]},
    )
    assert first.url.path == "/a"
    assert_request_sent(actionrt_respx, method="POST", url="https://api.example.com/a?x=1")
    assert_request_sent(actionrt_respx, form={"grant_type": "password", "username": "ada"})
    with pytest.raises(AssertionError):
        assert_request_sent(actionrt_respx, url="https://api.example.com/a", json={"k": [1]})
    with pytest.raises(AssertionError):  # a field too many is a different form
        assert_request_sent(actionrt_respx, form={"grant_type": "password"})
    with pytest.raises(AssertionError):
        assert_request_sent(actionrt_respx, method="GET")


def test_a_failed_assertion_lists_what_was_sent_with_credentials_masked(
    actionrt_respx: respx.MockRouter,
) -> None:
    actionrt_respx.route(host="api.example.com").respond(200)
    _send(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/a",
        json={"n": 1},
        headers={"Authorization": "Bearer s3cret", "x-trace": "t-1"},
    )

    with pytest.raises(AssertionError) as caught:
        assert_request_sent(actionrt_respx, json={"n": 2})

    message = str(caught.value)
    assert message.startswith(
        "no request matches {'json': {'n': 2}}; requests sent:\n  POST https://api.example.com/a"
    )
    assert '"n":1' in message.replace(" ", "")
    assert "'x-trace': 't-1'" in message
    assert "s3cret" not in message
    assert "'authorization': '***'" in message


def test_a_failed_assertion_says_when_nothing_was_sent(actionrt_respx: respx.MockRouter) -> None:
    with pytest.raises(AssertionError, match=r"requests sent:\n  \(no request was sent\)"):
        assert_request_sent(actionrt_respx, method="POST")


def test_replay_answers_in_recorded_order_and_repeats_the_last(
    actionrt_respx: respx.MockRouter, tmp_path: Path
) -> None:
    recording = tmp_path / "recorded.yaml"
    recording.write_text(
        textwrap.dedent(
            """
            - request: {method: POST, url: "https://api.example.com/token"}
              response: {status: 200, json: {access_token: abc, expires_in: 3600}}
            - request: {method: POST, url: "https://api.example.com/send"}
              responses:
                - {status: 429, headers: {Retry-After: "0"}, json: {error: slow down}}
                - {status: 200, text: queued}
            """
        )
    )
    token, send = replay(actionrt_respx, recording)

    with httpx.Client() as client:
        assert client.post("https://api.example.com/token?scope=x").json()["access_token"] == "abc"
        first = client.post("https://api.example.com/send")
        second = client.post("https://api.example.com/send")
        third = client.post("https://api.example.com/send")

    assert (first.status_code, first.headers["retry-after"]) == (429, "0")
    assert (second.status_code, second.text) == (200, "queued")
    assert third.status_code == 200
    assert (token.call_count, send.call_count) == (1, 3)


def test_replay_reads_json_recordings_too(actionrt_respx: respx.MockRouter, tmp_path: Path) -> None:
    recording = tmp_path / "recorded.json"
    recording.write_text(
        json.dumps(
            [
                {
                    "request": {"method": "GET", "url": "https://a.example.com/x"},
                    "response": {"status": 404, "json": {"error": "nope"}},
                }
            ]
        )
    )
    replay(actionrt_respx, recording)
    assert httpx.get("https://a.example.com/x").json() == {"error": "nope"}


def test_replay_refuses_a_recording_without_urls(actionrt_respx: respx.MockRouter, tmp_path: Path) -> None:
    recording = tmp_path / "bad.json"
    recording.write_text(json.dumps([{"request": {"method": "GET"}, "response": {"status": 200}}]))
    with pytest.raises(ValueError, match=r"entry 0 has no request\.url"):
        replay(actionrt_respx, recording)


def test_http_response_is_what_classify_response_receives() -> None:
    answer = http_response(429, json={"error": "slow"}, headers={"Retry-After": "2"})
    assert (answer.status, answer.headers["retry-after"]) == (429, "2")
    assert json.loads(answer.content) == {"error": "slow"}
    assert http_response(200, text="ok").content == b"ok"


def test_dict_secrets_is_a_secret_provider() -> None:
    secrets = DictSecrets({"A": "1"}, name="vault")
    assert (secrets.name, secrets.get("A"), secrets.get("B")) == ("vault", "1", None)


def test_a_form_assertion_keeps_repeated_fields_in_order(actionrt_respx: respx.MockRouter) -> None:
    actionrt_respx.route(host="api.example.com").respond(201)
    _send(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/Messages.json",
        content=b"To=%2B15558675310&MediaUrl=https%3A%2F%2Fa.example%2F1.png&MediaUrl=https%3A%2F%2Fa.example%2F2.png",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    both = ["https://a.example/1.png", "https://a.example/2.png"]

    assert_request_sent(actionrt_respx, form={"To": "+15558675310", "MediaUrl": both})
    assert form_fields(actionrt_respx.calls.last.request.content)["MediaUrl"] == both
    with pytest.raises(AssertionError):  # one MediaUrl was dropped, or the order changed
        assert_request_sent(actionrt_respx, form={"To": "+15558675310", "MediaUrl": both[1]})
    with pytest.raises(AssertionError):
        assert_request_sent(actionrt_respx, form={"To": "+15558675310", "MediaUrl": both[::-1]})


def test_a_json_body_is_not_a_form_even_with_the_same_fields(actionrt_respx: respx.MockRouter) -> None:
    actionrt_respx.route(host="api.example.com").respond(201)
    _send(
        actionrt_respx,
        method="POST",
        url="https://api.example.com/x",
        content=b"a=1",
        headers={"Content-Type": "text/plain"},
    )
    with pytest.raises(AssertionError):
        assert_request_sent(actionrt_respx, form={"a": "1"})
