"""`actionrt new-connector`: the templates of a connector plugin distribution, and their rendering.

Templates are `string.Template` files (`$name` placeholders; `$$` is a literal dollar sign): the
generated project is plain Python and TOML, nothing to learn before editing it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from string import Template
from urllib.parse import unquote, urlsplit

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
    # Where actionrt comes from when it is not on a package index (a checkout): written as a uv
    # source, so `uv sync` in the new project finds it. Not part of the built distribution.
    actionrt_source: Path | None = None
    actionrt_editable: bool = False
    # The API takes form-encoded bodies (`application/x-www-form-urlencoded`) rather than JSON.
    form: bool = False

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
            "uv_sources": self._uv_sources(),
            "body_encoding": '\n    body_encoding = "form"  # the sample is written as JSON, sent as a form'
            if self.form
            else "",
            "sent_body": 'form={"to": "ada@example.com", "text": "Hi"}'
            if self.form
            else 'json={"to": "ada@example.com", "text": "Hi"}',
        }

    def _uv_sources(self) -> str:
        if self.actionrt_source is None:
            return ""
        editable = ", editable = true" if self.actionrt_editable else ""
        return (
            "\n# actionrt from the local path it was installed from where this project was generated;\n"
            "# uv reads this only to develop (it is not in the built distribution).\n"
            "[tool.uv.sources]\n"
            f"actionrt = {{ path = {json.dumps(str(self.actionrt_source))}{editable} }}\n"
        )


def local_actionrt() -> tuple[Path, bool] | None:
    """Where the running actionrt was installed from, and whether editable, when that is a local
    path (a checkout or a wheel file) rather than a package index; else None."""
    try:
        text = metadata.distribution("actionrt").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        origin = json.loads(text)
    except ValueError:
        return None
    url = origin.get("url") if isinstance(origin, dict) else None
    if not isinstance(url, str) or not url.startswith("file://"):
        return None
    editable = bool((origin.get("dir_info") or {}).get("editable"))
    return Path(unquote(urlsplit(url).path)), editable


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
