"""`actionrt new-connector`: the templates of a connector plugin distribution, and their rendering.

Templates are `string.Template` files (`$name` placeholders; `$$` is a literal dollar sign): the
generated project is plain Python and TOML, nothing to learn before editing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

# template file -> path in the generated project (`{module}` replaced by the module name)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "module.py.tmpl": "src/{module}/__init__.py",
    "py.typed.tmpl": "src/{module}/py.typed",
    "test_connector.py.tmpl": "tests/test_{module}.py",
}


@dataclass(frozen=True, slots=True)
class ConnectorProject:
    """The names a scaffolded connector project uses, all derived from one short name."""

    name: str  # `acme-crm`: the entry point name and the connector prefix

    @property
    def distribution(self) -> str:
        return f"actionrt-{self.name}"

    @property
    def module(self) -> str:
        return f"actionrt_{self.name.replace('-', '_')}"

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-")) + "Send"

    @property
    def connector(self) -> str:
        return f"{self.name}.send"

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "module": self.module,
            "class_name": self.class_name,
            "connector": self.connector,
            "action_name": self.name.replace("-", "_")[:25] + "_send",
            "secret": self.name.replace("-", "_").upper() + "_TOKEN",
        }


def check_name(name: str) -> str | None:
    """Why `name` cannot name a connector project, or None."""
    if not NAME.match(name):
        return "use lower-case letters, digits and single '-' (e.g. acme or acme-crm)"
    if name.startswith("actionrt"):
        return "give the short name: the distribution is called actionrt-<name>"
    return None


def render(project: ConnectorProject) -> dict[str, str]:
    """The generated files: relative path -> text."""
    values = project.values()
    folder = resources.files(__package__)
    return {
        target.format(module=project.module): Template(
            (folder / source).read_text(encoding="utf-8")
        ).substitute(values)
        for source, target in FILES.items()
    }


def write(project: ConnectorProject, parent: Path) -> Path:
    """Write the project under `parent/<distribution>`; FileExistsError when it exists."""
    root = parent / project.distribution
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    for relative, text in render(project).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
