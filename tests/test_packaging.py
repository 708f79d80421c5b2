"""Installed with pip, actionrt works as it does from the repository (slow: one end-to-end test).

Builds the core and every connector (sdist, then the wheel from the sdist), checks them with
`twine check`, installs the wheels with pip (not uv, not editable) into a fresh virtual
environment outside the repository, and uses them from an empty folder: the version, the demo
on the bundled examples, the service (console, OpenAPI, the examples listed), the plugins, and a
scaffolded connector whose own tests pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONNECTORS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
EXAMPLE_ACTIONS = {
    "abandonedCartReminder",
    "crmContactUpdate",
    "epsilonSendEmail",
    "loyaltyUpdate",
    "slackNotify",
    "smsSend",
    "storeWeather",
}


def run(*argv: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {k: v for k, v in env.items() if not k.startswith("ACTIONRT_")}
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.timeout(600)  # builds six distributions and installs them: minutes on a busy machine
def test_built_with_uv_installed_with_pip_it_works_outside_the_repository(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run("uv", "build", "--all-packages", "--out-dir", dist, cwd=ROOT)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == 1 + len(CONNECTORS), [p.name for p in dist.iterdir()]
    run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists, cwd=tmp_path)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_dir = venv / "bin"
    core = next(w for w in wheels if w.name.startswith("actionrt-"))
    plugins = [w for w in wheels if w is not core]
    empty = tmp_path / "empty"
    empty.mkdir()
    actionrt = bin_dir / "actionrt"

    # The core alone embeds: the runtime loads the bundled examples; no CLI, service or Redis.
    run(bin_dir / "pip", "install", "--quiet", core, cwd=tmp_path)
    embedded = (
        "import actionrt, importlib.util as u\n"
        "from actionrt.bundled import examples_dir\n"
        "runtime = actionrt.Runtime.from_path(examples_dir() / 'actions')\n"
        "print(len(runtime.actions), [m for m in ('click', 'rich', 'fastapi', 'uvicorn', 'redis')"
        " if u.find_spec(m)])\n"
    )
    assert run(bin_dir / "python", "-c", embedded, cwd=empty).stdout == "7 []\n"
    bare = subprocess.run([actionrt, "--version"], cwd=empty, capture_output=True, text=True, check=False)
    assert (bare.returncode, bare.stderr) == (
        1,
        "the actionrt command needs click and rich: pip install 'actionrt[cli]'\n",
    )

    run(bin_dir / "pip", "install", "--quiet", f"{core}[all]", *plugins, cwd=tmp_path)

    assert run(actionrt, "--version", cwd=empty).stdout == "actionrt 0.1.0\n"

    demo = json.loads(run(actionrt, "demo", "--customers", "200", "--json", cwd=empty).stdout)
    assert demo["customers"] == 200 and set(demo["statuses"]) == {"http_200"}  # every call answered

    report = json.loads(run(actionrt, "plugins", "--json", cwd=empty).stdout)
    assert {p["distribution"] for p in report["plugins"]} >= set(CONNECTORS)
    assert report["failures"] == []

    serve_and_look(actionrt, empty)

    run(actionrt, "new-connector", "x", cwd=empty)
    project = empty / "actionrt-x"
    run(bin_dir / "pip", "install", "--quiet", project, "pytest", "pytest-asyncio", "respx", cwd=empty)
    tests = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert " passed" in tests.stdout and "failed" not in tests.stdout


def serve_and_look(actionrt: Path, folder: Path) -> None:
    """`actionrt serve` with no folder given: the console and /openapi.json answer, and the
    store holds the bundled examples."""
    process = subprocess.Popen(
        [str(actionrt), "serve", "--port", "0"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # "actionrt service on http://127.0.0.1:PORT/ (...)"
        assert banner.startswith("actionrt service on http://127.0.0.1:"), banner + process.stderr.read()
        base = banner.split()[3].rstrip("/")
        with urllib.request.urlopen(f"{base}/console/actions", timeout=30) as page:
            assert page.status == 200 and "loyaltyUpdate" in page.read().decode()
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as spec:
            assert json.load(spec)["openapi"].startswith("3.")
        with urllib.request.urlopen(f"{base}/actions", timeout=30) as listing:
            body = json.load(listing)
        items = body["actions"] if isinstance(body, dict) else body
        assert {a["name"] for a in items} == EXAMPLE_ACTIONS
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_bundled_examples_are_the_repository_s_in_a_checkout() -> None:
    from actionrt.bundled import examples_dir

    assert examples_dir() == ROOT / "examples"
