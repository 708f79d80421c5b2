"""The `actionrt` command as a newcomer meets it, through the console script in a subprocess:
help, version, exit codes (0 ok, 1 invalid or failed, 2 usage), JSON in the API's camelCase,
one-line errors, and a first real call against `actionrt standin`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPT = str(Path(sys.executable).parent / "actionrt")
COMMANDS = [
    "validate",
    "list",
    "show",
    "schema",
    "auth-check",
    "demo",
    "invoke",
    "plugins",
    "new-connector",
    "serve",
    "standin",
]


def actionrt(*args: str, columns: int = 80, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": str(columns), **env}
    environment.pop("ACTIONRT_ALLOW_PRIVATE_NETWORK", None)
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=60, env=environment, check=False
    )


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    """`actionrt standin` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [SCRIPT, "standin", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    banner = process.stdout.readline()  # "stand-in API on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    try:
        assert banner.startswith("stand-in API on http://127.0.0.1:"), banner + process.stderr.read()
        yield banner.split()[3].rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def write_action(folder: Path, url: str, **fields: object) -> Path:
    document = {
        "name": "hello",
        "endpoint": {"url": url, "method": "POST"},
        "request": {
            "sample": {"email": "ada@example.com", "points": 10, "tier": "gold"},
            "variables": {
                "email": {"label": "Email"},
                "points": {"label": "Points"},
                "tier": {"label": "Tier"},
            },
        },
        **fields,
    }
    folder.mkdir(exist_ok=True)
    path = folder / "hello.json"
    path.write_text(json.dumps(document))
    return path


def token_login(standin: str) -> dict[str, object]:
    """A customAuthorization block whose token endpoint is the stand-in's."""
    return {
        "type": "customAuthorization",
        "endpoint": f"{standin}/token",
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"username": "ada"}},
        "tokenInResponse": "json://access_token",
    }


def test_version_from_the_script_and_from_python_m() -> None:
    script = actionrt("--version")
    module = subprocess.run(
        [sys.executable, "-m", "actionrt", "-V"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (script.returncode, script.stdout) == (0, "actionrt 0.1.0\n")
    assert (module.returncode, module.stdout) == (0, "actionrt 0.1.0\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_arguments_and_shows_no_type_tags(command: str) -> None:
    short, long = actionrt(command, "-h"), actionrt(command, "--help")
    assert short.returncode == 0 and short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: actionrt {command} [OPTIONS]")
    for tag in ("<bool>", "<str>", "<path>", "<int>", "<float>", "list[", "{name}", "{path}"):
        assert tag not in short.stdout, (command, tag)


def test_usage_shows_the_argument_names() -> None:
    assert actionrt("invoke", "-h").stdout.startswith("Usage: actionrt invoke [OPTIONS] NAME PATH\n")
    assert actionrt("validate", "-h").stdout.startswith("Usage: actionrt validate [OPTIONS] PATH...\n")
    assert "-p, --param FIELD=VALUE" in actionrt("invoke", "-h").stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_a_usage_error_is_one_line_and_exit_2(command: str) -> None:
    result = actionrt(command, "--no-such-option")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"actionrt {command}: No such option")
    assert line.endswith(f"--no-such-option' (see 'actionrt {command} -h')")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "/nonexistent/actions"],
        ["list", "/nonexistent/actions"],
        ["show", "loyaltyUpdate", "/nonexistent/actions"],
        ["auth-check", "loyaltyUpdate", "/nonexistent/actions"],
        ["invoke", "loyaltyUpdate", "/nonexistent/actions"],
    ],
)
def test_a_missing_folder_is_exit_1_for_every_command(args: list[str]) -> None:
    result = actionrt(*args)
    assert result.returncode == 1
    assert result.stderr == "/nonexistent/actions: no such file or directory\n"


@pytest.mark.parametrize("command", ["show", "auth-check", "invoke"])
def test_an_unknown_action_is_exit_1_for_every_command(command: str) -> None:
    result = actionrt(command, "nope", str(EXAMPLES))
    assert result.returncode == 1
    assert "'nope'" in result.stderr or "nope:" in result.stderr
    assert "loyaltyUpdate" in result.stderr  # the known names


def test_validate_json() -> None:
    ok = actionrt("validate", str(EXAMPLES), "--json")
    broken = actionrt("validate", str(ROOT / "tests" / "definitions" / "invalid" / "url_ipv4.yaml"), "--json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == {"ok": True, "actions": 7, "journeys": 2, "problems": []}
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["problems"] == [
        {
            "source": str(ROOT / "tests" / "definitions" / "invalid" / "url_ipv4.yaml"),
            "path": "endpoint.url",
            "message": "IP addresses are not allowed",
        }
    ]


def test_a_first_real_call_against_the_stand_in(tmp_path: Path, standin: str) -> None:
    folder = tmp_path / "actions"
    write_action(folder, f"{standin}/v1/hello")

    refused = actionrt("validate", str(folder))
    accepted = actionrt("validate", str(folder), "--allow-private-network")
    called = actionrt(
        "invoke", "hello", str(folder), "--allow-private-network", "--json",
        "-p", "email=ada@example.com", "-p", "points=12", "-p", "tier=gold",
    )  # fmt: skip

    assert refused.returncode == 1
    assert "add --allow-private-network" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert called.returncode == 0, called.stdout + called.stderr
    result = json.loads(called.stdout)
    assert (result["status"], result["httpStatus"], result["response"]) == ("http_200", 200, {"ok": True})
    assert not any("_" in key for key in result), result.keys()  # camelCase, as the API


def test_invoke_names_every_missing_variable(tmp_path: Path, standin: str) -> None:
    folder = tmp_path / "actions"
    write_action(folder, f"{standin}/v1/hello")
    result = actionrt("invoke", "hello", str(folder), "--allow-private-network", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "email, points, tier: required variables are missing"


def test_auth_check_json_and_client_certificate_files(tmp_path: Path, standin: str) -> None:
    folder = tmp_path / "actions"
    missing = tmp_path / "missing-cert.pem"
    write_action(
        folder,
        f"{standin}/v1/hello",
        endpoint={
            "url": f"{standin}/v1/hello",
            "method": "POST",
            "clientCertificate": {"certFile": str(missing), "keyFile": str(tmp_path / "missing-key.pem")},
        },
        authentication=token_login(standin),
    )
    text = actionrt("auth-check", "hello", str(folder), "--allow-private-network")
    as_json = actionrt("auth-check", "hello", str(folder), "--allow-private-network", "--json")

    assert text.returncode == 1
    assert text.stderr == f"hello: customAuthorization: failed: client certificate: cannot read {missing}\n"
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "action": "hello",
        "authentication": "customAuthorization",
        "ok": False,
        "message": f"client certificate: cannot read {missing}",
    }


def test_auth_check_json_success(tmp_path: Path, standin: str) -> None:
    folder = tmp_path / "actions"
    write_action(
        folder,
        f"{standin}/v1/hello",
        authentication=token_login(standin),
    )
    result = actionrt("auth-check", "hello", str(folder), "--allow-private-network", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_demo_json_runs_the_bundled_examples_with_no_folder_given(tmp_path: Path) -> None:
    result = subprocess.run(
        [SCRIPT, "demo", "--customers", "30", "--json"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["customers"] == 30 and report["calls"] > 30
    assert set(report["statuses"]) == {"http_200"}
    assert "callsPerSecond" in report and "tokenRequests" in report


def test_serve_errors_are_one_line_before_any_banner(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store.db")]
    no_examples = actionrt("serve", "--examples", "/nonexistent", *store)
    bad_port = actionrt("serve", "--port", "99999", *store)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = actionrt("serve", "--port", str(port), *store)

    assert (no_examples.returncode, no_examples.stdout) == (1, "")
    assert no_examples.stderr == "--examples /nonexistent: no such directory\n"
    assert (bad_port.returncode, bad_port.stdout) == (2, "")
    assert len(bad_port.stderr.splitlines()) == 1 and "99999" in bad_port.stderr
    assert (taken.returncode, taken.stdout) == (1, "")
    assert taken.stderr == f"cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_list_is_readable_at_80_columns() -> None:
    result = actionrt("list", str(EXAMPLES), columns=80)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    for name, host, description in [
        ("abandonedCartReminder", "messaging.example.com", "Ask the messaging service"),
        ("epsilonSendEmail", "api.example.com", "Send a transactional email"),
        ("slackNotify", "hooks.slack.example.com", "Tell the sales channel"),
    ]:
        assert any(line.startswith(f"{name} — {description}") for line in lines)
        assert any(f" {host} " in line for line in lines)


def test_show_shows_secret_references_and_masks_written_secrets() -> None:
    text = actionrt("show", "smsSend", str(EXAMPLES))
    crm = json.loads(actionrt("show", "crmContactUpdate", str(EXAMPLES), "--json").stdout)
    epsilon = json.loads(actionrt("show", "epsilonSendEmail", str(EXAMPLES), "--json").stdout)

    assert '"password": "{{ secrets.file:sms_password }}"' in text.stdout
    assert crm["authentication"]["token"] == "{{ secrets.file:crm_token }}"
    assert epsilon["authentication"]["body"]["bodyParams"]["password"] == "***"  # written in the file


def test_help_imports_neither_the_runtime_nor_the_http_stack() -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['actionrt', '--help']\n"
        "from actionrt.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    loaded = set(result.stderr.split())
    heavy = {
        "actionrt.runtime",
        "actionrt.registry",
        "aiohttp",
        "httpx",
        "pydantic",
        "rich",
        "jinja2",
        "pluggy",
    }
    assert "click" in loaded
    assert not heavy & loaded
