"""The pytest plugin for connector authors (entry point `pytest11: actionrt`, loaded by every pytest
run that has actionrt installed). Importing it costs nothing more than pytest: respx, httpx and the
runtime load only when a test asks for a fixture. Everything here is opt-in.

Fixtures:
    actionrt_respx            a started `respx.MockRouter` that answers every httpx request in the
                              test: the runtime's action calls and its token calls alike.
    actionrt_runtime_factory  builds a `Runtime` from action dicts or files with inline plugins,
                              the httpx transport (so respx sees every call), instant retries, no
                              DNS, and no entry-point plugins unless asked for.
Helpers:
    assert_request_sent(router, method=, url=, params=, headers=, json=, form=)  -> httpx.Request
    form_fields(content)              an urlencoded body as {field: [values]}, repeated keys kept
    replay(router, "recorded.yaml")   answer requests with responses recorded in a file
    http_response(status, json=..., text=..., headers=...)  an `HttpResponse` for unit tests
    DictSecrets({"NAME": "value"})    a secret provider backed by a dict
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest

from actionrt.secrets import MappingSecrets

if TYPE_CHECKING:
    import httpx
    import respx

    from actionrt.http import HttpResponse
    from actionrt.runtime import Runtime

__all__ = [
    "DictSecrets",
    "RuntimeFactory",
    "assert_request_sent",
    "form_fields",
    "http_response",
    "replay",
]

# Header values shown as *** in assertion messages (unless the assertion itself names them).
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "api-key", "proxy-authorization"})


DictSecrets = MappingSecrets
"""A secret provider answering from a dict: `DictSecrets({"TOKEN": "t"}, name="env")`."""


async def _echo_resolver(host: str, port: int) -> list[tuple[str, int]]:
    # Tests mock every endpoint with respx: no DNS. Answering the host itself keeps token
    # calls on their hostname (the auth context pins only when the address differs).
    return [(host, port)]


class RuntimeFactory:
    """Builds runtimes for a test: `factory(actions, plugins=[my_plugin], secrets={...})`.

    `actions` is an action dict, a list of them, or a path to files. Runtimes are not opened:
    use `async with factory(...) as runtime:`.
    """

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self._directory = directory
        self._monkeypatch = monkeypatch
        self._count = 0

    def __call__(
        self,
        actions: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str | Path,
        *,
        plugins: Iterable[object] = (),
        secrets: Mapping[str, str] | None = None,
        autoload: bool = False,
        **options: Any,
    ) -> Runtime:
        """A `Runtime` for `actions` with only `plugins` (all installed ones with `autoload`),
        `secrets` as its `env` provider, instant retries; other options go to `Runtime.from_path`."""
        import httpx

        from actionrt.guard import DestinationPolicy
        from actionrt.http import HttpxTransport
        from actionrt.retry import Backoff
        from actionrt.runtime import Runtime

        if not autoload:
            # Only the plugins the test names: installed connectors must not change its result.
            self._monkeypatch.setenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")
        path = self._write(actions)
        policy = options.pop("policy", None) or DestinationPolicy(True, resolver=_echo_resolver)
        transport = options.pop("transport", None) or HttpxTransport(httpx.AsyncClient(), policy=policy)
        providers = dict(options.pop("secrets_providers", {}))
        if secrets is not None:
            providers["env"] = DictSecrets(secrets)
        return Runtime.from_path(
            path,
            plugins=tuple(plugins),
            policy=policy,
            transport=transport,
            secrets=providers or None,
            backoff=options.pop("backoff", None) or Backoff(base=0.0, jitter=0.0),
            **options,
        )

    def _write(self, actions: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str | Path) -> Path:
        if isinstance(actions, str | Path):
            return Path(actions)
        self._count += 1
        folder = self._directory / f"actions-{self._count}"
        folder.mkdir(parents=True)
        items = [actions] if isinstance(actions, Mapping) else list(actions)
        for index, action in enumerate(items):
            name = str(action.get("name", f"action{index}"))
            (folder / f"{name}.json").write_text(jsonlib.dumps(action, indent=2), encoding="utf-8")
        return folder


@pytest.fixture
def actionrt_respx() -> Iterator[respx.MockRouter]:
    """A respx router that answers every httpx request of the test (unrouted ones fail)."""
    import respx

    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def actionrt_runtime_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuntimeFactory:
    """Builds runtimes bound to httpx (use with `actionrt_respx`); see `RuntimeFactory`."""
    return RuntimeFactory(tmp_path, monkeypatch)


# -- asserting what was sent ----------------------------------------------------------------------


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _body_json(request: httpx.Request) -> Any:
    try:
        return jsonlib.loads(request.content)
    except ValueError:
        return None


def _describe(request: httpx.Request, shown: Iterable[str]) -> str:
    visible = {name.lower() for name in shown}
    headers = {
        name: ("***" if name.lower() in CREDENTIAL_HEADERS and name.lower() not in visible else value)
        for name, value in request.headers.items()
    }
    body = request.content.decode("utf-8", "replace")
    return (
        f"  {request.method} {_without_query(str(request.url))} query={dict(request.url.params)}\n"
        f"    headers={headers}\n    body={body[:500]}"
    )


def assert_request_sent(
    router: respx.Router,
    *,
    method: str | None = None,
    url: str | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    form: Mapping[str, str | Sequence[str]] | None = None,
) -> httpx.Request:
    """The first request the router saw that matches everything given, else AssertionError.

    `url` is compared without the query string (unless it has one); `params` and `headers` must
    be present with these values (header names case-insensitive; others may be present too);
    `json` must equal the parsed body; `form` must equal the urlencoded body, field by field: a
    repeated field is given as a list of its values in order (`{"MediaUrl": ["a", "b"]}`), and a
    form body must say `Content-Type: application/x-www-form-urlencoded`.
    """
    sent: list[httpx.Request] = [call.request for call in router.calls]
    for request in sent:
        if method is not None and request.method.upper() != method.upper():
            continue
        if url is not None:
            actual = str(request.url) if "?" in url else _without_query(str(request.url))
            if actual != url:
                continue
        if params is not None and any(request.url.params.get(k) != v for k, v in params.items()):
            continue
        if headers is not None and any(request.headers.get(k) != v for k, v in headers.items()):
            continue
        if json is not None and _body_json(request) != json:
            continue
        if form is not None and not _form_matches(request, form):
            continue
        return request
    wanted = {
        k: v
        for k, v in {
            "method": method,
            "url": url,
            "params": params,
            "headers": headers,
            "json": json,
            "form": form,
        }.items()
        if v is not None
    }
    listing = "\n".join(_describe(r, headers or {}) for r in sent) or "  (no request was sent)"
    raise AssertionError(f"no request matches {wanted}; requests sent:\n{listing}")


def form_fields(content: bytes) -> dict[str, list[str]]:
    """An urlencoded body as {field: [values in order]}: repeated fields keep every value."""
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(content.decode("utf-8"), keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _form_matches(request: httpx.Request, form: Mapping[str, str | Sequence[str]]) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return False
    wanted = {name: [value] if isinstance(value, str) else list(value) for name, value in form.items()}
    return form_fields(request.content) == wanted


# -- replaying recorded responses -----------------------------------------------------------------


def _load_records(path: Path) -> list[dict[str, Any]]:
    from actionrt.loader import read_document

    data = read_document(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: a recording is a list of {{request, response}} entries")
    return data


def _response(record: Mapping[str, Any]) -> httpx.Response:
    import httpx

    status = int(record.get("status", 200))
    headers = dict(record.get("headers") or {})
    if "json" in record:
        return httpx.Response(status, headers=headers, json=record["json"])
    return httpx.Response(status, headers=headers, text=str(record.get("text", "")))


def replay(router: respx.Router, recording: str | Path) -> list[respx.Route]:
    """Answer requests with recorded responses, read from a JSON or YAML file.

    The file is a list of entries `{request: {method, url}, response: {status, headers, json |
    text}}`, or `responses: [...]` answered in order (the last one repeats). A recorded `url`
    without a query string matches any query. Returns the routes (their `.calls` count calls).
    """
    routes = []
    for index, entry in enumerate(_load_records(Path(recording))):
        request = entry.get("request") or {}
        answers = entry.get("responses") or [entry.get("response") or {}]
        if not request.get("url"):
            raise ValueError(f"{recording}: entry {index} has no request.url")
        responses = [_response(answer) for answer in answers]
        route = router.route(method=str(request.get("method", "POST")).upper(), url=request["url"])
        route.side_effect = _sequence(responses)
        routes.append(route)
    return routes


def _sequence(responses: list[httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    position = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal position
        response = responses[min(position, len(responses) - 1)]
        position += 1
        return _copy(response)

    return answer


def _copy(response: httpx.Response) -> httpx.Response:
    import httpx

    return httpx.Response(response.status_code, headers=response.headers, content=response.content)


# -- building answers for unit tests of call-path hooks -------------------------------------------


def http_response(
    status: int = 200,
    *,
    json: Any = None,
    text: str | None = None,
    headers: Mapping[str, str] | None = None,
    url: str = "https://api.example.com/",
) -> HttpResponse:
    """An `actionrt.http.HttpResponse` as the engine hands it to `classify_response`."""
    from actionrt.http import HttpResponse

    content = jsonlib.dumps(json).encode("utf-8") if json is not None else (text or "").encode("utf-8")
    return HttpResponse(status, {k.lower(): v for k, v in (headers or {}).items()}, content, url)
