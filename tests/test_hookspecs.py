"""The hook specifications stay honest: every hook is documented under its exact signature with an
example that runs, and every hook is implemented by some test."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actionrt import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "plugins" / "hooks.md"


def _hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "actionrt_spec")
    }


HOOKS = _hooks()


def signature_of(function: Callable[..., Any]) -> str:
    """`name(arg: Type, ...) -> Return`, as the docs write it (annotations are strings here)."""
    signature = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{function.__name__}({params}) -> {signature.return_annotation}"


def doc_sections() -> dict[str, str]:
    """Heading (the signature) -> the section's text."""
    text = HOOKS_DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_hooks_are_the_documented_ones() -> None:
    assert sorted(HOOKS) == [
        "actionrt_shutdown",
        "actionrt_startup",
        "register_auth_schemes",
        "register_connectors",
        "register_event_sinks",
        "register_expression_functions",
        "register_secret_providers",
    ]
    documented = {heading.split("(", 1)[0] for heading in doc_sections()}
    assert documented == set(HOOKS), "a docs section names no hook, or a hook has no section"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hook_is_documented_under_its_exact_signature(name: str) -> None:
    assert signature_of(HOOKS[name]) in doc_sections(), (
        f"docs/plugins/hooks.md needs a section headed `## {signature_of(HOOKS[name])}`"
    )


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hook_has_a_one_line_docstring(name: str) -> None:
    doc = inspect.getdoc(HOOKS[name]) or ""
    assert doc and "\n" not in doc, f"{name} needs a one-line docstring"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hook_section_has_an_example_that_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = doc_sections()[signature_of(HOOKS[name])]
    examples = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert examples, f"the {name} section has no ```python example"
    monkeypatch.chdir(tmp_path)
    for example in examples:
        assert f"def {name}(" in example, f"the {name} example does not implement {name}"
        # dont_inherit: the example runs as a user would run it, without this file's __future__ imports
        code = compile(example, f"hooks.md#{name}", "exec", dont_inherit=True)
        exec(code, {"__name__": f"hooks_md_{name}"})


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_hook_is_implemented_by_a_test(name: str) -> None:
    test_files = [
        path
        for folder in (ROOT / "tests", *ROOT.glob("plugins/*/tests"))
        for path in folder.rglob("test_*.py")
        if path.name != "test_hookspecs.py"
    ]
    implementing = [p for p in test_files if re.search(rf"\bdef {name}\(", p.read_text(encoding="utf-8"))]
    assert implementing, f"no test implements the hook {name}: add one (tests/test_plugins.py)"
