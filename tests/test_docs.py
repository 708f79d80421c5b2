"""Every code block of README.md and docs/ runs as written, offline, and every link resolves.

- ```python blocks run with this Python, the blocks of a page in one namespace (a block may use
  what an earlier one defined); a block defining `test_*` functions is a test file, run by
  pytest (a project a block scaffolded is importable). ```sh / ```bash / ```shell blocks run
  with bash (`set -e`); in ```console blocks each `$ ` line is a command, the others its output.
  A command is expected to exit 0, or N when its line ends with `# exit N`.
- The blocks of one page run in order, in one scratch folder holding a copy of `examples/`, so a
  block may use a file an earlier block wrote. `uv run CMD` runs CMD in this environment (with
  ./src importable) and `uv sync` does nothing: nothing is downloaded.
- The docs' stand-in address, 127.0.0.1:8701 (`actionrt standin`'s default), is this test's own
  stand-in on a free port: a first real call is made for real, and nothing leaves the machine.
- A block preceded by the line `<!-- docs-test: skip (reason) -->` is not run (a long-running
  server, output shown for reading, a real partner's credentials).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
SKIP = re.compile(r"^<!-- docs-test: skip \(.+\) -->$")
FENCE = re.compile(r"^```(\w*)\s*$")
RUNNABLE = {"python", "sh", "bash", "shell", "console"}
STANDIN_ADDRESS = "127.0.0.1:8701"
EXPECTED_EXIT = re.compile(r"#\s*exit (\d+)\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str

    def __str__(self) -> str:
        shown = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{shown}:{self.line} ({self.language})"


def blocks(page: Path) -> list[Block]:
    """The runnable blocks of `page` that are not marked to be skipped."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        language = opening.group(1)
        skipped = index > 0 and SKIP.match(lines[index - 1].strip()) is not None
        if language in RUNNABLE and not skipped:
            found.append(Block(page, index + 1, language, "\n".join(lines[index + 1 : end]) + "\n"))
        index = end + 1
    return found


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    """`actionrt standin` on a free port: the address that replaces 127.0.0.1:8701."""
    process = subprocess.Popen(
        [str(BIN / "actionrt"), "standin", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    try:
        yield banner.split()[3].removeprefix("http://").rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def environment(folder: Path) -> dict[str, str]:
    """This environment's commands first on PATH; the sources of projects a block scaffolded
    (`*/src`) importable; no ACTIONRT_* setting of the machine leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in sorted(folder.glob("*/src")))
    env["COLUMNS"] = "100"
    return env


# `uv run CMD` runs CMD in this environment, with ./src importable (a project a block scaffolded
# is used from its source); `uv sync` has nothing to do. Nothing is downloaded.
UV_SHIM = (
    'uv() { case "$1" in\n'
    '  run) shift; PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" "$@";;\n'
    "  sync) : ;;\n"
    '  *) command uv "$@";;\n'
    "esac; }\n"
)


def commands(block: Block) -> list[tuple[str, int]]:
    """(shell text, expected exit status) of each command of a block."""
    if block.language != "console":
        return [(block.code, 0)]
    found = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            expected = EXPECTED_EXIT.search(line)
            found.append((line[2:], int(expected.group(1)) if expected else 0))
    return found


# Runs the ```python blocks of one page in one namespace, in order, as a reader's session: a
# block may use what an earlier block defined. One JSON line in (the code), one out (the error).
SESSION = """
import json, sys, traceback
channel, sys.stdout = sys.stdout, sys.stderr  # the blocks print to the output file
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    try:
        exec(compile(json.loads(line), "<block>", "exec"), namespace)
        answer = None
    except BaseException:
        answer = traceback.format_exc()
    sys.stderr.flush()
    channel.write(json.dumps(answer) + "\\n")
    channel.flush()
"""


class Session:
    """A Python process that runs the blocks it is given in one namespace."""

    def __init__(self, folder: Path) -> None:
        self.output = (folder / "python-output.txt").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SESSION],
            cwd=folder,
            env=environment(folder),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.output,
            text=True,
        )

    def run(self, code: str) -> str | None:
        """The traceback of `code`, or None when it ran."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        answer: str | None = json.loads(self.process.stdout.readline() or '"the session died"')
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self.output.close()


def is_test_module(code: str) -> bool:
    """A block defining `test_*` functions is a test file: pytest runs it."""
    return re.search(r"^(async )?def test_", code, re.MULTILINE) is not None


def run(block: Block, folder: Path, address: str, session: Session | None = None) -> None:
    code = block.code.replace(STANDIN_ADDRESS, address)
    block = Block(block.page, block.line, block.language, code)
    if block.language == "python" and not is_test_module(code):
        own = session or Session(folder)
        try:
            failure = own.run(code)
        finally:
            if session is None:
                own.close()
        assert failure is None, f"{block}\n{failure}"
        return
    if block.language == "python":
        test_file = folder / f"test_docs_block_{block.line}.py"
        test_file.write_text(code)
        options = "-q -p no:cacheprovider -o asyncio_mode=auto"
        pairs = [(f"python -m pytest {options} {test_file.name}", 0)]
    else:
        pairs = commands(block)
    for text, status in pairs:
        result = subprocess.run(
            ["bash", "-c", UV_SHIM + "set -euo pipefail\n" + text],
            cwd=folder,
            env=environment(folder),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode == status, (
            f"{block}: exit {result.returncode}, expected {status}\n{text}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        assert "Traceback (most recent call last)" not in result.stderr, f"{block}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs_as_written(page: Path, tmp_path: Path, standin: str) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    session = Session(tmp_path)
    try:
        for block in blocks(page):
            run(block, tmp_path, standin, session)
    finally:
        session.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    for match in LINK.finditer(text):
        target = (match.group(1) or match.group(2)).split("#")[0]
        if not target or re.match(r"^[a-z]+:", target):  # an anchor in the page, or a URL
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
        assert resolved.is_relative_to(ROOT), f"{page.relative_to(ROOT)}: {target} leaves the repository"


def test_no_page_cites_a_document_outside_the_repository() -> None:
    ours = {p.name for p in ROOT.rglob("*.md") if not {".venv", ".git"} & set(p.parts)}
    for page in PAGES:
        for name in re.findall(r"\b[\w-]+\.md\b", page.read_text()):
            assert name in ours, f"{page.relative_to(ROOT)} cites {name}, which is not in the repository"


def test_the_skip_marker_hides_a_block_and_a_console_block_runs_only_its_commands(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n```\n\n<!-- docs-test: skip (a server) -->\n```sh\nactionrt serve\n```\n\n"
        "```console\n$ actionrt validate nowhere   # exit 1\nnowhere: no such file or directory\n```\n"
    )
    found = blocks(page)
    assert [(b.language, b.line) for b in found] == [("python", 1), ("console", 10)]
    assert commands(found[1]) == [("actionrt validate nowhere   # exit 1", 1)]
    run(found[1], tmp_path, STANDIN_ADDRESS)
