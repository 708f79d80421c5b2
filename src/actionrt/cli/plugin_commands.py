"""Commands on plugins: `actionrt plugins` (what is loaded, from where, what it contributes, what
failed and why) and `actionrt new-connector` (scaffold a connector plugin distribution)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from actionrt.cli.app import app
from actionrt.plugins import Plugins

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_KIND_TITLES = {
    "connectors": "connectors",
    "authSchemes": "auth schemes",
    "secretProviders": "secret providers",
    "functions": "functions",
    "filters": "filters",
    "eventSinks": "event sinks",
}


@app.command("plugins")
def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a plugin failed to load.")] = False,
) -> None:
    """List the loaded plugins: versions, what each contributes, and what failed and why."""
    plugins = Plugins.load()
    report = plugins.report()
    descriptions = {name: str(getattr(c, "description", "") or "") for name, c in plugins.connectors.items()}
    if as_json:
        for plugin in report["plugins"]:
            plugin["connectors"] = {
                name: descriptions.get(name, "") for name in plugin["contributes"].get("connectors", [])
            }
        out.print(json.dumps(report, indent=2), markup=False)
    else:
        _print_report(report, descriptions)
    if strict and report["failures"]:
        raise typer.Exit(1)


def _print_report(report: dict[str, Any], descriptions: dict[str, str]) -> None:
    autoload = "on" if report["autoload"] else "off (ACTIONRT_DISABLE_PLUGIN_AUTOLOAD)"
    count = len(report["plugins"])
    out.print(f"{count} plugin{'' if count == 1 else 's'} loaded; entry points: {autoload}", markup=False)
    for plugin in report["plugins"]:
        version = " ".join(v for v in (plugin["distribution"], plugin["version"]) if v) or "-"
        out.print(f"\n[bold]{plugin['name']}[/bold]  {plugin['origin']}  {version}  ({plugin['module']})")
        if not plugin["contributes"]:
            out.print("    contributes nothing", markup=False)
        for kind, names in plugin["contributes"].items():
            if kind == "connectors":
                out.print("    connectors:", markup=False)
                for name in names:
                    description = descriptions.get(name)
                    out.print(f"      {name}" + (f" — {description}" if description else ""), markup=False)
            else:
                out.print(f"    {_KIND_TITLES.get(kind, kind)}: {', '.join(names)}", markup=False)
    if report["failures"]:
        out.print(f"\n[bold red]{len(report['failures'])} failed[/bold red]")
        for failure in report["failures"]:
            version = " ".join(v for v in (failure["distribution"], failure["version"]) if v)
            where = f" ({version})" if version else ""
            out.print(f"  {failure['name']}{where}: {failure['error']}", markup=False)
    if report["disabled"]:
        out.print(f"\ndisabled by ACTIONRT_DISABLE_PLUGINS: {', '.join(report['disabled'])}", markup=False)


@app.command("new-connector")
def new_connector(
    name: Annotated[str, typer.Argument(help="Short name, e.g. acme: makes actionrt-acme with acme.send.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create actionrt-NAME/ (default: here).")
    ] = Path("."),
) -> None:
    """Scaffold a connector plugin distribution whose tests pass as generated."""
    from actionrt.scaffold import ConnectorProject, check_name, local_actionrt, write

    if "_" in name and check_name(name.replace("_", "-")) is None:
        # Package names treat `_` and `-` alike (PEP 503); the distribution is written with `-`.
        name = name.replace("_", "-")
        out.print(f"using the name {name} (distribution names use '-')", markup=False)
    problem = check_name(name)
    if problem is not None:
        err.print(f"invalid name {name!r}: {problem}", markup=False)
        raise typer.Exit(2)
    source = local_actionrt()
    project = ConnectorProject(name, *(source or (None, False)))
    try:
        root = write(project, directory)
    except FileExistsError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    out.print(f"created {root} with the connector {project.connector}", markup=False)
    if project.actionrt_source is not None:
        out.print(
            f"actionrt comes from {project.actionrt_source} here: pyproject.toml points uv at it",
            markup=False,
        )
    out.print(f"next: cd {root} && uv sync && uv run pytest", markup=False)
