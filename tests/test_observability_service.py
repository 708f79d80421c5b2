"""`actionrt serve`'s observability: `GET /metrics`, `GET /actions/{name}/calls/{callId}`, and
the `--log-format` / `--record-bodies` options."""

from __future__ import annotations

import importlib
import io
import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from cryptography.fernet import Fernet
from observability_support import Partner, partner
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from actionrt.cli import app as cli
from actionrt.cli import serve_commands
from actionrt.loops import YOUNG_THRESHOLD
from actionrt.observability import uvicorn_log_config
from actionrt.observability.logs import log_call
from actionrt.service.app import create_app


def document(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"email": "ada@example.com"}, "variables": {"email": {"label": "Email"}}},
    }


@pytest.fixture
async def server() -> AsyncIterator[Partner]:
    async with partner() as running:
        yield running


async def service(tmp_path: Path, registry: CollectorRegistry, **options: Any) -> Starlette:
    return create_app(
        tmp_path / "store.db",
        allow_private_network=True,
        secret_key=Fernet.generate_key(),
        entry_points=False,
        metrics=registry,
        **options,
    )


def client(application: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1:8700")


async def test_metrics_route_counts_the_services_calls(server: Partner, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    application = await service(tmp_path, registry)
    async with client(application) as http:
        for name, path in (("notify", "/ok"), ("lookup", "/missing")):
            assert (await http.post("/actions", json=document(name, server.url + path))).status_code == 201
        for _ in range(3):
            await http.post("/actions/notify/invoke", json={"params": {"email": "a@example.com"}})
        await http.post("/actions/lookup/invoke", json={"params": {"email": "a@example.com"}})
        answer = await http.get("/metrics")
    await application.state.service.calls.aclose()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
    counts = {
        (s.labels["action"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(answer.text)
        if family.name == "actionrt_calls"
        for s in family.samples
        if s.name == "actionrt_calls_total"
    }
    assert counts == {("notify", "http_200"): 3, ("lookup", "http_404"): 1}


async def test_call_details_route(server: Partner, tmp_path: Path) -> None:
    application = await service(tmp_path, CollectorRegistry(), record_bodies=True)
    async with client(application) as http:
        await http.post("/actions", json=document("notify", server.url + "/flaky"))
        invoked = await http.post(
            "/actions/notify/invoke", json={"params": {"email": "customer-ada@example.com"}}
        )
        (recent,) = application.state.recorder.recent("notify")
        assert invoked.json()["callId"] == recent.call_id  # the answer names its details
        answer = await http.get(f"/actions/notify/calls/{recent.call_id}")
        missing = await http.get("/actions/notify/calls/0000")
    await application.state.service.calls.aclose()
    assert answer.status_code == 200
    shown = answer.json()
    assert shown["callId"] == recent.call_id and shown["attempts"] == 2 and shown["bodiesRecorded"] is True
    assert [r["response"]["status"] for r in shown["requests"]] == [503, 200]
    assert json.loads(shown["requests"][0]["request"]["body"]) == {"email": "customer-ada@example.com"}
    assert missing.status_code == 404 and "0000" in missing.json()["detail"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `serve` hands to uvicorn, instead of serving (nothing listens)."""
    seen: dict[str, Any] = {}
    real_bind = serve_commands.bind

    def bind(host: str, port: int) -> socket.socket:
        return real_bind("127.0.0.1", 0)

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen["app"] = server.config.app
        seen["log_config"] = server.config.log_config
        for listener in sockets:
            listener.close()

    monkeypatch.setattr(serve_commands, "bind", bind)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.delenv("ACTIONRT_API_TOKEN", raising=False)
    return seen


def test_serve_takes_the_log_format_and_record_bodies(tmp_path: Path, started: dict[str, Any]) -> None:
    arguments = ["serve", "--store", str(tmp_path / "store.db"), "--no-examples"]
    result = CliRunner().invoke(cli, [*arguments, "--log-format", "json", "--record-bodies"])
    assert result.exit_code == 0, result.output
    formatter = started["log_config"]["formatters"]["default"]
    assert formatter == {"()": "actionrt.observability.logs.JsonLogFormatter"}
    assert started["app"].state.recorder.record_bodies is True
    plain = CliRunner().invoke(cli, arguments)
    assert plain.exit_code == 0 and "format" in started["log_config"]["formatters"]["default"]
    assert started["app"].state.recorder.record_bodies is False
    wrong = CliRunner().invoke(cli, [*arguments, "--log-format", "xml"])
    assert wrong.exit_code == 2 and "xml" in wrong.output


# What `actionrt worker` set up, printed by a stand-in for the worker it runs (nothing is served).
WORKER_SET_UP = """
import gc, logging, sys
from actionrt.cli import main, worker_commands
from actionrt.observability import logs

async def report(config, metrics_port):
    handler = logs._direct_handler()
    print(type(handler).__name__, type(handler.formatter).__name__ if handler else None,
          logging.getLogger().handlers == [handler], gc.get_threshold()[0], gc.get_freeze_count() > 0,
          flush=True)

worker_commands._serve = report
sys.argv = ["actionrt", "worker", sys.argv[1], "--redis", "redis://127.0.0.1:1/0", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(
    ("options", "formatter"), [([], "TextLogFormatter"), (["--log-format", "json"], "JsonLogFormatter")]
)
def test_the_worker_logs_and_collects_as_serve_does(
    tmp_path: Path, options: list[str], formatter: str
) -> None:
    """Call lines made ready and written in batches, as under `serve`, every other library's
    lines through the same handler (through `logging.basicConfig` each line was a record, a
    `strftime` and a write of its own); and the collector settled as `serve` settles it."""
    shown = subprocess.run(
        [sys.executable, "-c", WORKER_SET_UP, str(tmp_path), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["BatchedStreamHandler", formatter, "True", str(YOUNG_THRESHOLD), "True"]


def test_json_log_config_writes_call_lines_as_json() -> None:
    config = uvicorn_log_config("json")
    assert config["loggers"]["actionrt"] == {"handlers": ["default"], "level": "INFO", "propagate": False}
    module, _, name = config["formatters"]["default"]["()"].rpartition(".")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(getattr(importlib.import_module(module), name)())
    logger = logging.getLogger("actionrt.calls")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        log_call("notify", "http_200", 1, 0.0123, "c-1", None, None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = json.loads(stream.getvalue())
    assert line["message"] == "notify http_200 attempts=1 12.3 ms call=c-1"
    assert (line["action"], line["status"], line["durationMs"], line["callId"]) == (
        "notify",
        "http_200",
        12.3,
        "c-1",
    )
    with pytest.raises(ValueError, match="log format must be one of text, json"):
        uvicorn_log_config("xml")


def call_record(**fields: Any) -> logging.LogRecord:
    """The record of one call line, as a handler of `actionrt.calls` receives it."""
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("actionrt.calls")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        log_call(**{**dict(action="notify", status="http_200", attempts=1, elapsed=0.0123), **fields})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    (record,) = seen
    return record


def test_a_call_line_comes_from_log_call_with_its_fields() -> None:
    record = call_record(call_id="c-1", trace_id="t-1", error_code=None)
    assert (record.name, record.levelno, record.funcName, Path(record.pathname).name) == (
        "actionrt.calls",
        logging.INFO,
        "log_call",
        "logs.py",
    )
    assert record.getMessage() == "notify http_200 attempts=1 12.3 ms call=c-1"
    assert (record.action, record.durationMs, record.callId, record.traceId) == ("notify", 12.3, "c-1", "t-1")


def test_the_text_format_writes_the_standard_time_across_seconds() -> None:
    text = uvicorn_log_config("text")["formatters"]["default"]
    module, _, name = text["class"].rpartition(".")
    ours = getattr(importlib.import_module(module), name)(text["format"])
    standard = logging.Formatter(text["format"])
    record = call_record(call_id="c-1", trace_id=None, error_code=None)
    for created in (1800000000.25, 1800000000.75, 1800000001.5, 1800000000.5):
        record.created, record.msecs = created, (created % 1) * 1000
        assert ours.format(record) == standard.format(record)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def line(message: str, level: int = logging.INFO, logger: str = "actionrt.calls") -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": logger, "msg": message, "levelno": level, "levelname": logging.getLevelName(level)}
    )


def test_call_lines_wait_at_most_the_delay_and_never_behind_another_line() -> None:
    from actionrt.observability.logs import BatchedStreamHandler

    stream, clock = io.StringIO(), FakeClock()
    handler = BatchedStreamHandler(stream, delay=0.2, clock=clock)
    try:
        handler.handle(line("a"))
        clock.now = 0.1
        handler.handle(line("b"))
        assert stream.getvalue() == ""  # waiting for more
        clock.now = 0.2  # the first line's delay is up: the next line takes both along
        handler.handle(line("c"))
        assert stream.getvalue() == "a\nb\nc\n"
        handler.handle(line("d"))
        handler.handle(line("failed", logging.ERROR))  # written at once, after what waited
        assert stream.getvalue().endswith("c\nd\nfailed\n")
        handler.handle(line("e"))
        handler.handle(line("stopping", logger="uvicorn.error"))  # not a call line: at once too
        assert stream.getvalue().endswith("failed\ne\nstopping\n")
        handler.handle(line("f"))
        handler.flush()
        handler.handle(line("g"))
    finally:
        handler.close()  # as logging.shutdown at exit
    assert stream.getvalue() == "a\nb\nc\nd\nfailed\ne\nstopping\nf\ng\n"


def test_a_call_line_is_written_when_no_other_comes() -> None:
    from actionrt.observability.logs import BatchedStreamHandler

    written = threading.Event()

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            count = super().write(text)
            written.set()
            return count

    stream = Stream()
    handler = BatchedStreamHandler(stream, delay=0.0)  # the writer thread's turn at once
    try:
        handler.handle(line("alone"))
        assert written.wait(10)
        assert stream.getvalue() == "alone\n"
    finally:
        handler.close()


def test_json_lines_keep_every_value() -> None:
    from actionrt.observability import JsonLogFormatter

    record = call_record(action="café", call_id="c-1", trace_id=None, error_code=None)
    parsed = json.loads(JsonLogFormatter().format(record))
    assert (parsed["action"], parsed["message"]) == ("café", "café http_200 attempts=1 12.3 ms call=c-1")
    record.huge = 2**70  # past 64 bits: orjson refuses it, the standard library writes it
    assert json.loads(JsonLogFormatter().format(record))["huge"] == 2**70


CALL_ARGUMENTS = ("action", "status", "attempts", "elapsed", "call_id", "trace_id", "error_code")
CALL_FIELDS = [
    dict(zip(CALL_ARGUMENTS, values, strict=True))
    for values in [
        ("notify", "http_200", 1, 0.0123, "c-1", None, None),
        ("café", "http_503", 3, 2.5, "c-2", "t-9", "UNAVAILABLE"),
        ("n", "timedout", 12, 0.0000004, "c-3", None, None),
    ]
]


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("fields", CALL_FIELDS)
def test_a_ready_made_call_line_is_the_line_of_its_record(log_format: str, fields: dict[str, Any]) -> None:
    formatter = logging.config.DictConfigurator(uvicorn_log_config(log_format)).configure_formatter(
        dict(uvicorn_log_config(log_format)["formatters"]["default"])
    )
    record = call_record(**fields)
    for created in (1800000000.25, 1800000000.999, 1800000001.0004, 1800000000.5):
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        milliseconds = int(fields["elapsed"] * 1_000_000 + 0.5) / 1000
        ready = formatter.call_line(
            created,
            (
                fields["action"],
                fields["status"],
                fields["attempts"],
                milliseconds,
                fields["call_id"],
                fields["trace_id"],
                fields["error_code"],
            ),
        )
        assert ready == formatter.format(record)


@pytest.fixture
def serve_logging() -> Any:
    """`actionrt` logging as `serve` sets it up: one BatchedStreamHandler, our text formatter;
    yields (the handler's stream, the handler); restored after. (pytest adds its capturing
    handlers to a logger that doesn't propagate as a test starts: `only` removes them.)"""
    from actionrt.observability.logs import BatchedStreamHandler, TextLogFormatter

    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, delay=60.0)
    handler.setFormatter(TextLogFormatter(uvicorn_log_config("text")["formatters"]["default"]["format"]))
    logger = logging.getLogger("actionrt")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield stream, handler
    finally:
        handler.close()
        logger.handlers[:], logger.level, logger.propagate = saved


def only(handler: logging.Handler) -> None:
    logging.getLogger("actionrt").handlers[:] = [handler]


def test_through_serves_logging_a_call_line_is_made_without_a_record(
    serve_logging: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, handler = serve_logging
    only(handler)

    def no_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        raise AssertionError("a record was made")

    monkeypatch.setattr(logging.getLogger("actionrt.calls"), "makeRecord", no_record)
    log_call("notify", "http_200", 1, 0.0123, "c-1", None, None)
    log_call("notify", "http_500", 2, 1.5, "c-2", None, "E")
    assert stream.getvalue() == ""  # call lines wait for the batch, as records' lines do
    handler.flush()
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" INFO actionrt.calls: notify http_200 attempts=1 12.3 ms call=c-1")
    assert second.endswith(" INFO actionrt.calls: notify http_500 attempts=2 1500.0 ms call=c-2")


@pytest.mark.parametrize("change", ["a filter", "a second handler", "another format", "a record factory"])
def test_a_call_line_is_a_record_when_someone_else_could_see_one(
    serve_logging: Any, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    stream, handler = serve_logging
    only(handler)
    seen: list[logging.LogRecord] = []
    calls = logging.getLogger("actionrt.calls")
    if change == "a filter":
        monkeypatch.setattr(calls, "filters", [lambda record: seen.append(record) or True])
    elif change == "a second handler":
        other = logging.Handler()
        other.emit = seen.append  # type: ignore[method-assign]
        monkeypatch.setattr(calls, "handlers", [other])
    elif change == "another format":
        monkeypatch.setattr(handler, "formatter", logging.Formatter("%(name)s %(callId)s"))
    else:
        factory = logging.getLogRecordFactory()

        def made(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            seen.append(record)
            return record

        monkeypatch.setattr(logging, "_logRecordFactory", made)  # `setLogRecordFactory`, undone after
    log_call("notify", "http_200", 1, 0.0123, "c-1", None, None)
    handler.flush()
    if change == "another format":
        assert stream.getvalue() == "actionrt.calls c-1\n"
    else:
        assert [record.callId for record in seen] == ["c-1"]  # type: ignore[attr-defined]
