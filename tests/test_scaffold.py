"""`actionrt new-connector`: the scaffolded distribution's own tests pass as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from actionrt import scaffold
from actionrt.cli import app
from actionrt.scaffold import ConnectorProject, check_name, render


def actionrt_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("actionrt")
    fallback = [sys.executable, "-c", "from actionrt.cli import main; main()"]
    command = [str(script)] if script.exists() else fallback
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def run_generated_tests(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    env.pop("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_generated_project_passes_its_own_tests(tmp_path: Path) -> None:
    created = actionrt_command("new-connector", "acme-crm", "--dir", str(tmp_path), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "actionrt-acme-crm"
    assert created.stdout.splitlines()[0] == f"created {root} with the connector acme-crm.send"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/actionrt_acme_crm/__init__.py",
        "src/actionrt_acme_crm/py.typed",
        "tests/test_actionrt_acme_crm.py",
    ]

    run = run_generated_tests(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_the_form_encoded_variant_passes_its_own_tests(tmp_path: Path) -> None:
    created = actionrt_command("new-connector", "acme-sms", "--form", "--dir", str(tmp_path), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "actionrt-acme-sms"
    module = (root / "src/actionrt_acme_sms/__init__.py").read_text()
    tests = (root / "tests/test_actionrt_acme_sms.py").read_text()
    assert 'body_encoding = "form"' in module
    assert 'form={"to": "ada@example.com", "text": "Hi"}' in tests

    run = run_generated_tests(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_every_generated_python_file_compiles_in_both_variants() -> None:
    for project in (ConnectorProject("acme"), ConnectorProject("acme-form", form=True)):
        for relative, text in render(project).items():
            if relative.endswith(".py"):
                compile(text, relative, "exec")


def test_the_generated_pyproject_declares_the_entry_point() -> None:
    files = render(ConnectorProject("acme"))
    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["name"] == "actionrt-acme"
    assert pyproject["project"]["entry-points"]["actionrt"] == {"acme": "actionrt_acme"}
    assert "actionrt" in pyproject["project"]["dependencies"]
    assert "class AcmeSend(TemplateConnector):" in files["src/actionrt_acme/__init__.py"]
    assert 'name = "acme.send"' in files["src/actionrt_acme/__init__.py"]
    assert "{{ secrets.ACME_TOKEN }}" in files["README.md"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Acme", "use lower-case letters, digits and single '-' (e.g. acme or acme-crm)"),
        ("acme--crm", "use lower-case letters, digits and single '-' (e.g. acme or acme-crm)"),
        ("acme_crm", "use lower-case letters, digits and single '-' (e.g. acme or acme-crm)"),
        ("actionrt-acme", "give the short name: the distribution is called actionrt-<name>"),
        ("acme2", None),
    ],
)
def test_names(name: str, problem: str | None) -> None:
    assert check_name(name) == problem


def test_a_bad_name_or_an_existing_directory_is_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["new-connector", "Acme", "--dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "invalid name 'Acme'" in bad.output
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "actionrt-acme").mkdir()
    exists = runner.invoke(app, ["new-connector", "acme", "--dir", str(tmp_path)])
    assert exists.exit_code == 1
    assert "actionrt-acme already exists" in exists.output


def test_long_names_still_make_a_valid_action_name() -> None:
    files = render(ConnectorProject("a-very-long-connector-name-indeed"))
    test_file = files["tests/test_actionrt_a_very_long_connector_name_indeed.py"]
    assert '"name": "a_very_long_connector_nam_send"' in test_file


def test_a_name_written_with_underscores_is_taken_with_dashes(tmp_path: Path) -> None:
    # Python package names treat `_` and `-` alike (PEP 503): `demo_thing` means `demo-thing`.
    result = CliRunner().invoke(app, ["new-connector", "demo_thing", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "actionrt-demo-thing"
    assert result.output.splitlines()[:2] == [
        "using the name demo-thing (distribution names use '-')",
        f"created {root} with the connector demo-thing.send",
    ]
    assert (root / "src" / "actionrt_demo_thing" / "__init__.py").exists()


def test_an_actionrt_installed_from_a_local_path_becomes_a_uv_source(tmp_path: Path) -> None:
    # Until actionrt is on the index the new project installs from, `uv sync` must find it where
    # it came from; the source is for development only, never in the built metadata.
    checkout = tmp_path / "actionrt checkout"
    pyproject = tomllib.loads(render(ConnectorProject("acme", checkout, True))["pyproject.toml"])
    assert pyproject["tool"]["uv"]["sources"] == {"actionrt": {"path": str(checkout), "editable": True}}
    assert pyproject["project"]["dependencies"] == ["actionrt"]
    plain = tomllib.loads(render(ConnectorProject("acme"))["pyproject.toml"])
    assert "uv" not in plain.get("tool", {})


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ('{"url": "file:///work/actionrt", "dir_info": {"editable": true}}', (Path("/work/actionrt"), True)),
        (
            '{"url": "file:///tmp/wheels/actionrt-0.1.0-py3-none-any.whl", "archive_info": {}}',
            (Path("/tmp/wheels/actionrt-0.1.0-py3-none-any.whl"), False),
        ),
        ('{"url": "https://example.com/actionrt-0.1.0.tar.gz", "archive_info": {}}', None),
        (None, None),
    ],
)
def test_where_actionrt_was_installed_from(
    monkeypatch: pytest.MonkeyPatch, direct_url: str | None, expected: tuple[Path, bool] | None
) -> None:
    class Installed:
        def read_text(self, name: str) -> str | None:
            return direct_url if name == "direct_url.json" else None

    monkeypatch.setattr(scaffold.metadata, "distribution", lambda name: Installed())
    assert scaffold.local_actionrt() == expected


def test_new_connector_points_uv_at_the_local_actionrt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaffold, "local_actionrt", lambda: (Path("/src/actionrt"), True))
    result = CliRunner().invoke(app, ["new-connector", "acme", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "actionrt comes from /src/actionrt here: pyproject.toml points uv at it" in result.output
    pyproject = tomllib.loads((tmp_path / "actionrt-acme" / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"]["actionrt"] == {"path": "/src/actionrt", "editable": True}
