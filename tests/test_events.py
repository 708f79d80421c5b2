"""The built-in event sinks."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from actionrt.events import JsonLinesSink, LoggingSink


def test_json_lines_sink_appends_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "steps.jsonl"
    sink = JsonLinesSink(path)
    sink.emit({"action": "a", "status": "http_200"})
    sink.emit({"action": "b", "status": "timedout"})
    sink.close()
    again = JsonLinesSink(path)  # appends, never truncates
    again.emit({"action": "c"})
    again.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="closed"):
        again.emit({"action": "d"})


def test_json_lines_sink_keeps_lines_whole_across_threads(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "steps.jsonl", flush_every=50)

    def burst(n: int) -> None:
        for i in range(200):
            sink.emit({"thread": n, "i": i, "pad": "x" * 100})

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    lines = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["pad"] for line in lines)


def test_logging_sink_logs_the_event(caplog: pytest.LogCaptureFixture) -> None:
    sink = LoggingSink()
    with caplog.at_level(logging.INFO, logger="actionrt.events"):
        sink.emit({"action": "a", "status": "capped"})
    (record,) = caplog.records
    assert json.loads(record.getMessage()) == {"action": "a", "status": "capped"}
    assert record.event == {"action": "a", "status": "capped"}  # type: ignore[attr-defined]
