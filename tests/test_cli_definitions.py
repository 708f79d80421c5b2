"""The validate, list, show and schema commands, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from actionrt.cli import app
from actionrt.definition import action_json_schema

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INVALID = Path(__file__).parent / "definitions" / "invalid"
runner = CliRunner()


def test_validate_examples_exits_zero():
    result = runner.invoke(app, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 7 actions, 2 journeys")


def test_validate_prints_one_line_per_problem_and_exits_one():
    files = [INVALID / "url_ipv4.yaml", INVALID / "name_too_long.yaml"]
    result = runner.invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"{files[0]}: endpoint.url: IP addresses are not allowed",
        f"{files[1]}: name: must be 1 to 30 letters, digits or '_'",
        "hint: for a server on this machine or a private network (a stand-in, a local test), "
        "add --allow-private-network",
    ]


def test_validate_a_missing_path():
    result = runner.invoke(app, ["validate", "/nonexistent/actions"])
    assert result.exit_code == 1
    assert "/nonexistent/actions: no such file or directory" in result.output


def test_list_json_is_stable_for_scripts():
    result = runner.invoke(app, ["list", str(EXAMPLES), "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    loyalty = next(r for r in rows if r["name"] == "loyaltyUpdate")
    assert loyalty == {
        "name": "loyaltyUpdate",
        "description": "Push a customer's loyalty status to the retailer's API",
        "method": "POST",
        "host": "myapidomain.com",
        "url": "https://myapidomain.com/v2/loyalty/",
        "authentication": "customAuthorization",
        "usedIn": 1,
        "journeys": ["welcome"],
        "source": str(EXAMPLES / "actions" / "loyalty_update.yaml"),
    }
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)


def test_list_shows_method_host_authentication_and_used_in():
    result = runner.invoke(app, ["list", str(EXAMPLES)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    name = next(i for i, li in enumerate(lines) if li.startswith("abandonedCartReminder"))
    assert lines[name + 1] == "    POST messaging.example.com · auth none · used in 1 journey"


def test_show_lists_journeys_and_masks_secrets():
    result = runner.invoke(app, ["show", "epsilonSendEmail", str(EXAMPLES), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["usedIn"] == [{"id": "welcome", "name": "Welcome series", "status": "live"}]
    assert "my-client-secret" not in result.output
    assert document["authentication"]["body"]["bodyParams"]["password"] == "***"
    assert document["authentication"]["headers"]["Authorization"] == "***"


def test_show_masks_credentials_but_not_the_settings_named_like_them(tmp_path: Path):
    action = {
        "name": "keyed",
        "endpoint": {
            "url": "https://api.example.com/v1",
            "method": "GET",
            "headers": [
                {"name": "x-api-key", "value": "literal-key-123"},
                {"name": "x-api-version", "value": "2"},
            ],
            "queryParameters": [{"name": "access_token", "value": "literal-token-456"}],
            "clientCertificate": {"certFile": "c.pem", "keyFile": "k.pem", "password": "key-pass-789"},
        },
        "authentication": {
            "type": "customAuthorization",
            "endpoint": "https://auth.example.com/token",
            "method": "GET",
            "tokenInResponse": "json://access_token",
            "authorizationType": "header",
            "tokenTarget": "x-auth-token",
        },
    }
    (tmp_path / "keyed.json").write_text(json.dumps(action))
    result = runner.invoke(app, ["show", "keyed", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    for secret in ("literal-key-123", "literal-token-456", "key-pass-789"):
        assert secret not in result.output
    assert document["endpoint"]["clientCertificate"]["certFile"] == "c.pem"
    assert document["endpoint"]["headers"][1] == {"name": "x-api-version", "value": "2"}
    auth = document["authentication"]
    assert (auth["authorizationType"], auth["tokenTarget"]) == ("header", "x-auth-token")


def test_show_for_a_person_counts_and_lists_the_journeys():
    result = runner.invoke(app, ["show", "loyaltyUpdate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "Used in: 1 journey\n" in result.output
    assert "  - welcome (live): Welcome series" in result.output


def test_show_an_unknown_action():
    result = runner.invoke(app, ["show", "nope", str(EXAMPLES)])
    assert result.exit_code == 1
    assert "unknown action 'nope'" in result.output


def test_schema_prints_the_models_schema():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == action_json_schema()


def test_the_committed_reference_page_matches_the_model():
    page = Path(__file__).resolve().parent.parent / "docs" / "action-file-reference.md"
    result = runner.invoke(app, ["schema", "--markdown"])
    assert result.exit_code == 0
    assert page.read_text() == result.output, "run: uv run actionrt schema --markdown > " + str(page)
