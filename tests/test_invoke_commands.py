"""`actionrt invoke` against a stdlib HTTP server on loopback (the CLI runs its own loop)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from actionrt.cli import app


@pytest.fixture(autouse=True)
def allowed_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variables these tests' actions read, allowed as an operator would."""
    monkeypatch.setenv("ACTIONRT_ENV_SECRETS", "OTHER_TOKEN")


class Echo(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 200 if b'"fail"' not in body else 422
        answer = json.dumps({"got": json.loads(body), "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def actions(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "crm.json").write_text(
        json.dumps(
            {
                "name": "crm",
                "endpoint": {
                    "url": f"http://127.0.0.1:{server.server_address[1]}/v3/",
                    "method": "PUT",
                    "dynamicPath": True,
                    "queryParameters": [{"name": "locale", "variable": True, "label": "L"}],
                },
                "request": {
                    "sample": {"stage": "lead", "score": 1, "tags": ["a"]},
                    "variables": {"stage": {"label": "S"}, "score": {"label": "N"}, "tags": {"label": "T"}},
                },
                "retry": {"count": 0},
            }
        )
    )
    yield tmp_path
    server.shutdown()
    thread.join()


runner = CliRunner()
BASE = ["invoke", "crm", "--allow-private-network", "-q", "locale=fr", "--path", "ada/x"]


def test_invoke_prints_the_answer_and_exits_0(actions: Path) -> None:
    outcome = runner.invoke(
        app,
        [
            *BASE[:2],
            str(actions),
            *BASE[2:],
            "-p",
            "stage=vip",
            "-p",
            "score=3",
            "-p",
            'tags=["q","r"]',
            "--json",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert result["status"] == "http_200" and result["ok"] is True
    assert result["response"] == {
        "got": {"stage": "vip", "score": 3, "tags": ["q", "r"]},
        "path": "/v3/ada/x?locale=fr",
    }


def test_invoke_exits_1_when_the_call_fails(actions: Path) -> None:
    outcome = runner.invoke(
        app, [*BASE[:2], str(actions), *BASE[2:], "-p", "stage=fail", "-p", "score=3", "-p", "tags=[]"]
    )
    assert outcome.exit_code == 1
    assert "http_422" in outcome.stdout


def test_invoke_reports_bad_input_naming_the_field(actions: Path) -> None:
    outcome = runner.invoke(
        app, [*BASE[:2], str(actions), *BASE[2:], "-p", "stage=x", "-p", "score=three", "-p", "tags=[]"]
    )
    assert outcome.exit_code == 1
    assert "internalError" in outcome.stdout and "score: expected an integer" in outcome.stdout


def test_invoke_an_unknown_action_or_bad_files_exits_1(actions: Path, tmp_path: Path) -> None:
    # 1 as for validate, list, show and auth-check: 2 is kept for a command line that is wrong.
    assert runner.invoke(app, ["invoke", "nope", str(actions), "--allow-private-network"]).exit_code == 1
    (tmp_path / "broken.yaml").write_text("name: [")
    assert runner.invoke(app, ["invoke", "crm", str(tmp_path), "--allow-private-network"]).exit_code == 1


def test_a_malformed_pair_is_a_usage_error(actions: Path) -> None:
    outcome = runner.invoke(app, ["invoke", "crm", str(actions), "-p", "novalue"])
    assert outcome.exit_code == 2


def test_only_the_invoked_actions_secrets_must_be_set(actions: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTHER_TOKEN", raising=False)
    (actions / "other.json").write_text(
        json.dumps(
            {
                "name": "other",
                "endpoint": {"url": "https://api.example.com/v1", "method": "GET"},
                "authentication": {"type": "bearer", "token": "{{ secrets.OTHER_TOKEN }}"},
            }
        )
    )
    args = [*BASE[:2], str(actions), *BASE[2:], "-p", "stage=vip", "-p", "score=3", "-p", "tags=[]"]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    outcome = runner.invoke(app, ["invoke", "other", str(actions), "--allow-private-network"])
    assert outcome.exit_code == 1  # a call that failed: internalError, nothing sent
    assert "secret 'OTHER_TOKEN' is not set" in outcome.output


def test_a_string_that_looks_like_json_is_sent_as_written(actions: Path) -> None:
    args = [
        *BASE[:2],
        str(actions),
        *BASE[2:],
        "-p",
        "stage=[URGENT] {vip}",
        "-p",
        "score=3",
        "-p",
        "tags=[]",
    ]
    outcome = runner.invoke(app, [*args, "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["response"]["got"]["stage"] == "[URGENT] {vip}"


def test_a_list_variable_takes_json(actions: Path) -> None:
    args = [*BASE[:2], str(actions), *BASE[2:], "-p", "stage=x", "-p", "score=3", "-p", "tags=[oops"]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 2
    assert "tags is a listString: write it as JSON" in outcome.output
