"""The connector guide's acme project (its blocks that start with a file path) passes its own tests
next to its module; tests/test_docs.py runs the other blocks of docs/ as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins"
GUIDE = DOCS / "writing-a-connector.md"
BLOCK = re.compile(r"(<!-- docs-test: skip[^>]*-->\n)?```python\n(.*?)```", re.DOTALL)
FILE_LINE = re.compile(r"^# ((?:src|tests)/\S+\.py)\n")


def blocks(page: Path) -> list[tuple[bool, str]]:
    """(skipped for a plain run, code) for each ```python block of `page`."""
    return [(bool(skip), code) for skip, code in BLOCK.findall(page.read_text(encoding="utf-8"))]


def test_the_guides_project_passes_its_own_tests(tmp_path: Path) -> None:
    files = {}
    for _, code in blocks(GUIDE):
        match = FILE_LINE.match(code)
        if match:
            files[match.group(1)] = code
    assert sorted(files) == ["src/actionrt_acme/__init__.py", "tests/test_actionrt_acme.py"]
    for relative, code in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(code, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nasyncio_mode = "auto"\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_the_plugin_docs_stand_alone() -> None:
    # The docs ship with the package: they may not send a reader to a file that is not in it.
    for page in DOCS.glob("*.md"):
        assert "contract.md" not in page.read_text(encoding="utf-8"), page.name
