"""`actionrt demo`: the examples' welcome journey against the loopback stand-in."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from actionrt.cli import app
from actionrt.demo import point_at, run_demo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_endpoints_and_token_endpoints_move_onto_the_stand_in():
    raw = {
        "name": "a",
        "endpoint": {"url": "https://api.example.com/v1/x", "method": "POST"},
        "authentication": {
            "type": "customAuthorization",
            "endpoint": "https://myapi.example.com/v2/user/login",
        },
    }
    moved = point_at(raw, "http://127.0.0.1:9")
    assert moved["endpoint"]["url"] == "http://127.0.0.1:9/api.example.com/v1/x"
    assert moved["authentication"]["endpoint"] == "http://127.0.0.1:9/login"
    assert raw["endpoint"]["url"] == "https://api.example.com/v1/x"  # the original is untouched


async def test_every_customer_completes_with_one_token_per_credentials():
    report = await run_demo(EXAMPLES, customers=300, concurrency=16, failure_rate=0.0)
    assert report.calls == 600  # two action nodes per customer
    assert report.statuses == {"http_200": 600}
    assert report.branches == {"completed": 300}
    assert report.retries == 0
    # epsilonSendEmail and loyaltyUpdate have different credentials: one token each, ever
    assert report.token_requests == 2


async def test_the_cart_recovery_journey_completes_too():
    report = await run_demo(
        EXAMPLES, customers=50, journey_id="cartRecovery", concurrency=8, failure_rate=0.0
    )
    assert report.statuses == {"http_200": 100}
    assert report.branches == {"completed": 50}


async def test_transient_failures_are_retried():
    report = await run_demo(EXAMPLES, customers=200, concurrency=16, failure_rate=0.2)
    assert report.retries > 0
    assert report.server_statuses[503] >= report.retries
    assert (
        report.statuses["http_200"] + sum(n for s, n in report.statuses.items() if s != "http_200")
        == report.calls
    )


def test_the_command_prints_a_summary():
    result = CliRunner().invoke(app, ["demo", "--customers", "100", "--examples", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    for label in ("calls/s", "status http_200", "retries", "latency p50", "latency p99", "token requests"):
        assert label in result.output


def test_an_unknown_journey_is_one_line_not_a_traceback():
    result = CliRunner().invoke(
        app, ["demo", "--customers", "5", "--journey", "nope", "--examples", str(EXAMPLES)]
    )
    assert result.exit_code == 1
    assert f"{EXAMPLES}: no journey 'nope' (known: cartRecovery, welcome)" in result.output
    assert "Traceback" not in result.output


def test_every_problem_of_broken_examples_is_listed_with_its_file(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad-name\nendpoint: {url: https://api.example.com/x, method: GET}\n"
    )
    (tmp_path / "journey.yaml").write_text("kind: journey\nid: j\nname: J\nstatus: running\n")
    (tmp_path / "broken.json").write_text("{")
    result = CliRunner().invoke(app, ["demo", "--customers", "5", "--examples", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for line in (
        f"{tmp_path / 'bad.yaml'}: name: must be 1 to 30 letters, digits or '_'",
        f"{tmp_path / 'journey.yaml'}: status: Input should be 'draft' or 'live'",
        f"{tmp_path / 'broken.json'}: line 1: invalid JSON",
    ):
        assert line in result.output


def test_missing_examples_are_one_line():
    result = CliRunner().invoke(app, ["demo", "--customers", "5", "--examples", "/nonexistent/examples"])
    assert result.exit_code == 1
    assert "/nonexistent/examples: no such file or directory" in result.output
