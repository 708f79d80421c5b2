"""Call details as the service shows them, byte for byte: calls with constant, variable and
secret headers, a query, a dynamic path, bodies on and off, retries, failed attempts and a
token refreshed after a 401, through `MockTransport` (no network, no clock in the answers).

`tests/golden/call_details.json` holds what masking each attempt as it was recorded gave
(written before details were masked on read); regenerate it only for an intended change:

    uv run python tests/test_observability_details.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from observability_support import SENTINEL

from actionrt.guard import DestinationPolicy
from actionrt.http import ConnectError, HttpRequest, HttpResponse, MockTransport
from actionrt.observability import BODY_LIMIT, CallDetails, CallRecorder
from actionrt.observability.details import Masking
from actionrt.results import InvocationResult
from actionrt.retry import Backoff
from actionrt.runtime import Runtime

GOLDEN = Path(__file__).parent / "golden" / "call_details.json"
API = "https://api.example.com"
SECRET = "{{ secrets.DETAILS_SENTINEL }}"
# What varies from run to run: the clock and the call's id.
VARYING = {"time", "elapsed", "queuedSeconds", "callId", "startedAfter", "duration"}

Answer = HttpResponse | Exception
_perf = time.perf_counter


async def public_dns(host: str, port: int) -> list[tuple[str, int]]:
    return [("93.184.216.34", port)]


async def no_wait(seconds: float) -> None:
    return None


def answer(status: int, body: bytes = b"{}", **headers: str) -> HttpResponse:
    shown = {"content-type": "application/json", "server": "partner/1", **headers}
    return HttpResponse(status, shown, body, "")


def shop(bodies: bool) -> dict[str, Any]:
    """Constant, secret and variable headers, a query, a dynamic path, an apiKey header."""
    return {
        "endpoint": {
            "url": API + "/v1/shop",
            "method": "POST",
            "dynamicPath": True,
            "headers": [
                {"name": "X-Version", "value": "2"},
                {"name": "x-partner", "value": SECRET},
                {"name": "x-email", "variable": True, "label": "Email"},
            ],
            "queryParameters": [
                {"name": "locale", "value": "fr"},
                {"name": "ref", "variable": True, "label": "Ref"},
            ],
        },
        "authentication": {"type": "apiKey", "name": "x-key", "value": SECRET},
    }


SCENARIOS: dict[str, dict[str, Any]] = {
    # a 503 then a 200: the first attempt retried because of its answer
    "retried": {
        "action": shop,
        "call": {"path": "users/ada-42", "query": {"ref": "r-7"}, "headers": {"x-email": "ada@example.com"}},
        "answers": [
            answer(503, b'{"error": "busy"}', **{"retry-after": "0", "set-cookie": f"s={SENTINEL}"}),
            answer(200, b'{"ok": true}', **{"x-trace": "t-1", "set-cookie": f"s={SENTINEL}"}),
        ],
    },
    # the key in the query, a refused connection, then a body longer than the limit each way
    "failed then cut": {
        "action": lambda bodies: {
            "endpoint": {
                "url": API + "/v1/big",
                "method": "POST",
                "queryParameters": [{"name": "locale", "value": "fr"}],
            },
            "authentication": {"type": "apiKey", "name": "appid", "value": SECRET, "location": "query"},
        },
        "params": {"email": "ada@example.com" + "x" * 5000},
        "answers": [ConnectError("refused"), answer(200, b'{"blob": "' + b"y" * 6000 + b'"}')],
    },
    # no answer at all: every attempt refused
    "down": {
        "action": lambda bodies: {"endpoint": {"url": API + "/v1/down", "method": "POST"}},
        "answers": [ConnectError("refused")] * 10,
    },
    # a 401: the token fetched again and the call sent once more with it
    "refreshed token": {
        "action": lambda bodies: {
            "endpoint": {"url": API + "/v1/notify", "method": "POST"},
            "authentication": {
                "type": "oauth2ClientCredentials",
                "tokenEndpoint": "https://auth.example.com/token",
                "clientId": "client-1",
                "clientSecret": SECRET,
            },
        },
        "answers": [answer(401, b'{"error": "expired"}'), answer(200, b'{"ok": true}')],
    },
}


def write_action(folder: Path, name: str, fields: dict[str, Any]) -> None:
    document = {
        "name": name,
        "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        "timeout": 5,
        **fields,
    }
    (folder / f"{name}.json").write_text(json.dumps(document))


def partner(answers: list[Answer]) -> Callable[[HttpRequest], HttpResponse]:
    """The scenario's answers in order; a token endpoint issues a new token each time."""
    queue: Iterator[Answer] = iter(answers)
    tokens = iter(range(1, 100))

    def handle(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/token"):
            token = {"access_token": f"{SENTINEL}-{next(tokens)}", "expires_in": 3600}
            return HttpResponse(200, {}, json.dumps(token).encode(), request.url)
        found = next(queue)
        if isinstance(found, Exception):
            raise found
        return HttpResponse(found.status, found.headers, found.content, request.url)

    return handle


def steady(value: Any) -> Any:
    """`value` with what varies from run to run replaced by its key's name."""
    if isinstance(value, dict):
        return {k: f"<{k}>" if k in VARYING else steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


async def shown(folder: Path, name: str, bodies: bool) -> dict[str, Any]:
    """The details (and the summary) of scenario `name`'s call, what varies made steady."""
    scenario = SCENARIOS[name]
    details = await recorded_call(
        folder,
        scenario["action"](bodies),
        bodies,
        partner(scenario["answers"]),
        action="a" + name.title().replace(" ", ""),
        params=scenario.get("params"),
        call=scenario.get("call"),
    )
    return {"details": steady(details.as_json()), "summary": steady(details.summary())}


CASES = [(name, bodies) for name in SCENARIOS for bodies in (False, True)]


def case_id(name: str, bodies: bool) -> str:
    return f"{name}, bodies {'on' if bodies else 'off'}"


@pytest.fixture(autouse=True)
def sentinel_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "DETAILS_SENTINEL")
    monkeypatch.setenv("DETAILS_SENTINEL", SENTINEL)


@pytest.mark.parametrize(("name", "bodies"), CASES, ids=[case_id(*case) for case in CASES])
async def test_details_are_what_masking_each_attempt_as_recorded_gave(
    tmp_path: Path, name: str, bodies: bool
) -> None:
    found = await shown(tmp_path, name, bodies)
    expected = json.loads(GOLDEN.read_text())[case_id(name, bodies)]
    assert json.dumps(found) == json.dumps(expected)
    assert SENTINEL not in json.dumps(found)


async def recorded_call(
    folder: Path,
    fields: dict[str, Any],
    bodies: bool,
    handle: Callable[[HttpRequest], HttpResponse],
    *,
    action: str = "shop",
    params: dict[str, Any] | None = None,
    call: dict[str, Any] | None = None,
) -> CallDetails:
    """`action` of `fields` called once through a partner that answers with `handle` (retried as
    its answers say), recorded: the call's details."""
    write_action(folder, action, fields)
    recorder = CallRecorder(record_bodies=bodies)
    runtime = Runtime.from_path(
        folder,
        plugins=(),
        transport=MockTransport(handle),
        policy=DestinationPolicy(True, resolver=public_dns),
        backoff=Backoff(base=0.001, cap=0.002),
        sleep=no_wait,
        metrics=False,
        recorder=recorder,
    )
    async with runtime:
        await runtime.invoke(action, params or {"email": "ada@example.com"}, **(call or {}))
    (details,) = recorder.recent(action)
    return details


def answering(statuses: list[int], sent: list[HttpRequest]) -> Callable[[HttpRequest], HttpResponse]:
    """A partner answering `statuses` in turn, keeping what was sent in `sent`."""

    def handle(request: HttpRequest) -> HttpResponse:
        sent.append(request)
        return answer(statuses[len(sent) - 1])

    return handle


@pytest.mark.parametrize("bodies", [False, True])
@pytest.mark.parametrize("location", ["header", "query"])
async def test_a_secret_written_where_the_action_declares_a_constant_is_masked(
    tmp_path: Path, bodies: bool, location: str
) -> None:
    # The API key's name is also one of the action's constants: authentication overwrites the
    # constant's value with the key, which must not be shown for the constant's sake.
    fields = {
        "endpoint": {
            "url": API + "/v1/shop",
            "method": "POST",
            "headers": [{"name": "X-Key", "value": "placeholder"}, {"name": "X-Version", "value": "2"}],
            "queryParameters": [{"name": "appid", "value": "public"}, {"name": "locale", "value": "fr"}],
        },
        "authentication": {
            "type": "apiKey",
            "name": "x-key" if location == "header" else "appid",
            "value": SECRET,
            "location": location,
        },
    }
    sent: list[HttpRequest] = []
    details = await recorded_call(tmp_path, fields, bodies, answering([200], sent))
    assert details.ok
    assert SENTINEL in sent[0].url + json.dumps(sent[0].headers)  # the key went out there
    (attempt,) = details.as_json()["requests"]
    assert SENTINEL not in json.dumps(details.as_json())
    request = attempt["request"]
    # The constants authentication left alone are shown as before.
    assert request["headers"]["X-Version"] == "2" and "locale=fr" in request["url"]
    if location == "header":
        assert request["headers"]["x-key"] == "***" and "appid=public" in request["url"]
    else:
        assert "appid=***" in request["url"]
        assert request["headers"]["X-Key"] == "placeholder"


@pytest.mark.parametrize(
    ("location", "name", "bodies"),
    [
        ("header", "x-email", True),  # a variable header's name: shown when bodies are recorded
        ("query", "ref", True),  # a variable query parameter's
        ("header", "accept", False),  # a protocol header's: always shown
        ("header", "accept", True),
    ],
)
async def test_whatever_authentication_writes_is_masked_under_any_name(
    tmp_path: Path, location: str, name: str, bodies: bool
) -> None:
    """Masking by name shows a variable field's value (with bodies) and a protocol header's:
    an API key written under such a name is masked all the same, the other fields shown."""
    fields = {
        "endpoint": {
            "url": API + "/v1/shop",
            "method": "POST",
            "headers": [
                {"name": "X-Version", "value": "2"},
                {"name": "x-email", "variable": True, "label": "Email"},
            ],
            "queryParameters": [
                {"name": "locale", "value": "fr"},
                {"name": "ref", "variable": True, "label": "Ref"},
            ],
        },
        "authentication": {"type": "apiKey", "name": name, "value": SECRET, "location": location},
    }
    call = {"headers": {"x-email": "ada@example.com"}, "query": {"ref": "r-7"}}
    # Two attempts: the key is applied again to the same headers.
    sent: list[HttpRequest] = []
    details = await recorded_call(tmp_path, fields, bodies, answering([503, 200], sent), call=call)
    assert details.ok
    assert all(SENTINEL in request.url + json.dumps(request.headers) for request in sent)
    shown = details.as_json()
    assert len(shown["requests"]) == 2 and SENTINEL not in json.dumps(shown)
    for attempt in shown["requests"]:
        request = attempt["request"]
        assert request["headers"]["X-Version"] == "2" and "locale=fr" in request["url"]
        if location == "header":
            assert request["headers"][name] == "***"
        else:
            assert f"{name}=***" in request["url"]
        if bodies and name != "x-email":  # call data, not written by authentication: shown
            assert request["headers"]["x-email"] == "ada@example.com"
        if bodies and name != "ref":
            assert "ref=r-7" in request["url"]


def masking_of(folder: Path, bodies: bool) -> Masking:
    write_action(folder, "shop", shop(bodies))
    action = Runtime.from_path(folder, plugins=(), policy=DestinationPolicy(True)).registry.actions["shop"]
    return Masking(action, record_bodies=bodies)


def result(action: str, attempts: int = 1) -> InvocationResult:
    return InvocationResult(
        action,
        "http_200",
        True,
        200,
        None,
        None,
        attempts,
        None,
        None,
        None,
        None,
        None,
        0.01,
        0.0,
        "",
        "POST",
    )


def test_an_attempt_shows_the_headers_it_sent_not_later_ones(tmp_path: Path) -> None:
    # The runtime's next attempt re-applies authentication to the same mapping.
    details = CallDetails(masking_of(tmp_path, bodies=False))
    request = HttpRequest("POST", API + "/v1/shop/x", {"Content-Type": "application/json"}, b"{}")
    details.saw(_perf(), _perf(), request, answer(503), None)
    request.headers["Content-Type"] = "text/plain"
    request.headers["Accept"] = "*/*"
    details.saw(_perf(), _perf(), request, answer(200), None)
    details.finish("c1", result("shop", 2), None)
    first, second = details.requests
    assert first.request_headers == {"Content-Type": "application/json"}
    assert second.request_headers == {"Content-Type": "text/plain", "Accept": "*/*"}


def test_only_the_cut_of_a_body_is_kept(tmp_path: Path) -> None:
    sent, got = b"s" * (BODY_LIMIT * 3), b"g" * (BODY_LIMIT + 1)
    kept = {}
    for bodies in (False, True):
        details = CallDetails(masking_of(tmp_path, bodies))
        details.saw(
            _perf(), _perf(), HttpRequest("POST", API + "/v1/shop/x", {}, sent), answer(200, got), None
        )
        (seen,) = details._seen
        kept[bodies] = seen[8]  # the bodies
    assert kept[False] is None  # bodies off: nothing of them
    with_bodies = kept[True]
    assert with_bodies is not None
    request_body, request_cut, answer_body, answer_cut = with_bodies
    assert (request_body, answer_body) == (sent[:BODY_LIMIT], got[:BODY_LIMIT]) and request_cut and answer_cut


def test_the_recorder_is_read_while_another_thread_adds(tmp_path: Path) -> None:
    # Appends take no lock: a reader must still never see a deque change under it.
    masking = masking_of(tmp_path, bodies=False)
    recorder = CallRecorder(keep=5, max_actions=3)

    def add() -> None:
        for n in range(20_000):
            details = CallDetails(masking)
            details.finish(f"c{n}", result("a0" if n == 0 else f"a{n % 3 + 1}"), None)  # a1 drops a0
            recorder.add(details)

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        adding = threading.Thread(target=add)
        adding.start()
        reads = 0
        while adding.is_alive():
            recorder.recent()
            recorder.recent("a1", limit=2)
            recorder.get("a2", "c2")
            reads += 1
        adding.join()
    finally:
        sys.setswitchinterval(switching)
    kept = recorder.recent()
    assert reads > 0 and len(kept) == 15 and {d.action for d in kept} == {"a1", "a2", "a3"}
    assert [d.call_id for d in recorder.recent("a3")] == [f"c{n}" for n in range(19_997, 19_982, -3)]


async def write_golden() -> None:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / "actionrt-details-golden"
    golden = {}
    for name, bodies in CASES:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        golden[case_id(name, bodies)] = await shown(folder, name, bodies)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    os.environ["ACTIONRT_ENV_SECRETS"] = "DETAILS_SENTINEL"
    os.environ["DETAILS_SENTINEL"] = SENTINEL
    asyncio.run(write_golden())
