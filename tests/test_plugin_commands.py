"""`actionrt plugins`: what is loaded, versions, contributions, and what failed and why."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from actionrt.cli import app

runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution `demoplug 2.0.1` with a working and a broken entry point."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "demoplug_ok.py").write_text(
        "from actionrt import hookimpl\n"
        "class Conn:\n"
        "    name = 'demo.send'\n"
        "    description = 'Send a demo message'\n"
        "    def expand(self, action):\n"
        "        return action\n"
        "@hookimpl\n"
        "def register_connectors(register):\n"
        "    register(Conn())\n"
        "@hookimpl\n"
        "def register_expression_functions(register, register_filter):\n"
        "    register_filter('demo_upper', str.upper)\n"
    )
    (folder / "demoplug_bad.py").write_text("raise RuntimeError('demo plugin needs DEMO_HOME')\n")
    info = folder / "demoplug-2.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demoplug\nVersion: 2.0.1\n")
    (info / "entry_points.txt").write_text("[actionrt]\ndemo-ok = demoplug_ok\ndemo-bad = demoplug_bad\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("ACTIONRT_DISABLE_PLUGINS", raising=False)
    yield folder
    for name in ("demoplug_ok", "demoplug_bad"):
        sys.modules.pop(name, None)


def test_json_lists_versions_contributions_and_failures(site: Path) -> None:
    result = runner.invoke(app, ["plugins", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    demo = next(p for p in report["plugins"] if p["name"] == "demo-ok")
    assert demo == {
        "name": "demo-ok",
        "origin": "entry point",
        "module": "demoplug_ok",
        "distribution": "demoplug",
        "version": "2.0.1",
        "hooks": ["register_connectors", "register_expression_functions"],
        "contributes": {"connectors": ["demo.send"], "filters": ["demo_upper"]},
        "connectors": {"demo.send": "Send a demo message"},
        "pluginApi": None,
        "warnings": [],
    }
    assert {
        "name": "demo-bad",
        "distribution": "demoplug",
        "version": "2.0.1",
        "error": "import failed: RuntimeError: demo plugin needs DEMO_HOME",
    } in report["failures"]
    assert report["plugins"][0]["name"] == "actionrt.auth.builtin"


def test_the_table_says_the_same_for_people(site: Path) -> None:
    result = runner.invoke(app, ["plugins"])

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "demo-ok  entry point  demoplug 2.0.1  (demoplug_ok)" in lines
    assert "      demo.send — Send a demo message" in lines
    assert "    filters: demo_upper" in lines
    assert "  demo-bad (demoplug 2.0.1): import failed: RuntimeError: demo plugin needs DEMO_HOME" in lines


def test_strict_fails_when_a_plugin_failed(site: Path) -> None:
    assert runner.invoke(app, ["plugins", "--strict"]).exit_code == 1


@pytest.fixture
def impostor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution `impostor 0.1` replacing slack.webhook on purpose, and trying `basic` without."""
    folder = tmp_path / "impostor-site"
    folder.mkdir()
    (folder / "impostor_plugin.py").write_text(
        "from actionrt import hookimpl\n"
        "class Conn:\n"
        "    name = 'slack.webhook'\n"
        "    description = 'Not Slack at all'\n"
        "    def expand(self, action):\n"
        "        return action\n"
        "@hookimpl\n"
        "def register_connectors(register):\n"
        "    register(Conn(), override=True)\n"
    )
    info = folder / "impostor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: impostor\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[actionrt]\nzz-impostor = impostor_plugin\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("ACTIONRT_DISABLE_PLUGINS", raising=False)
    yield folder
    sys.modules.pop("impostor_plugin", None)


def test_an_override_is_shown_and_strict_refuses_it(impostor: Path) -> None:
    shown = runner.invoke(app, ["plugins"])
    strict = runner.invoke(app, ["plugins", "--strict"])
    report = json.loads(runner.invoke(app, ["plugins", "--json"]).output)

    assert shown.exit_code == 0 and strict.exit_code == 1
    lines = shown.output.splitlines()
    # The bundled plugin's entry no longer shows the impostor's description as Slack's own.
    assert "      slack.webhook — (overridden by zz-impostor)" in lines
    assert "  connector slack.webhook: zz-impostor replaces slack" in lines
    # The bundled plugins say which plugin API versions they support.
    assert any(
        line.startswith("slack  entry point  actionrt-slack") and line.endswith("plugin API >=1.0,<2")
        for line in lines
    )
    assert report["overrides"] == [
        {"kind": "connector", "name": "slack.webhook", "plugin": "zz-impostor", "replaced": "slack"}
    ]


def test_disabled_plugins_are_listed_and_not_loaded(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGINS", "demo-bad")

    result = runner.invoke(app, ["plugins", "--strict"])

    assert result.exit_code == 0
    assert "disabled by ACTIONRT_DISABLE_PLUGINS: demo-bad" in result.output.splitlines()


def test_without_autoload_only_the_builtins_show(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")

    report = json.loads(runner.invoke(app, ["plugins", "--json"]).output)

    assert report["autoload"] is False
    assert [p["name"] for p in report["plugins"]] == ["actionrt.auth.builtin"]
    assert report["failures"] == []


def test_the_table_counts_one_plugin_in_the_singular(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")

    first = runner.invoke(app, ["plugins"]).output.splitlines()[0]

    assert first == "1 plugin loaded; entry points: off (ACTIONRT_DISABLE_PLUGIN_AUTOLOAD)"
