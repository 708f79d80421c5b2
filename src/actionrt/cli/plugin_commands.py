"""Commands on plugins: `actionrt plugins` (what is loaded, from where, what it contributes, what
failed and why) and `actionrt new-connector` (scaffold a connector plugin distribution)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from actionrt.cli.app import EXIT_USAGE, PATH, app, fail, json_option, print_json

_KIND_TITLES = {
    "connectors": "connectors",
    "authSchemes": "auth schemes",
    "secretProviders": "secret providers",
    "functions": "functions",
    "filters": "filters",
    "eventSinks": "event sinks",
}


@app.command("plugins", short_help="List the loaded plugins.")
@json_option
@click.option(
    "--strict", is_flag=True, help="Exit 1 when a plugin failed to load or overrides another's name."
)
def plugins_command(as_json: bool, strict: bool) -> None:
    """List the loaded plugins: versions, what each contributes, overrides, and what failed and why."""
    from actionrt.plugins import Plugins

    plugins = Plugins.load()
    report = plugins.report()
    descriptions = {name: str(getattr(c, "description", "") or "") for name, c in plugins.connectors.items()}
    # A replaced connector's description is the replacement's: say so under the original plugin.
    replaced = {
        (o["replaced"], o["name"]): o["plugin"] for o in report["overrides"] if o["kind"] == "connector"
    }
    if as_json:
        for plugin in report["plugins"]:
            plugin["connectors"] = {
                name: descriptions.get(name, "") if (plugin["name"], name) not in replaced else ""
                for name in plugin["contributes"].get("connectors", [])
            }
        print_json(report)
    else:
        _print_report(report, descriptions, replaced)
    if strict and (report["failures"] or report["overrides"]):
        raise SystemExit(1)


def _print_report(
    report: dict[str, Any], descriptions: dict[str, str], replaced: dict[tuple[str, str], str]
) -> None:
    from rich.console import Console

    from actionrt.plugins import KIND_KEYS

    out = Console(highlight=False, soft_wrap=True)
    autoload = "on" if report["autoload"] else "off (ACTIONRT_DISABLE_PLUGIN_AUTOLOAD)"
    count = len(report["plugins"])
    out.print(f"{count} plugin{'' if count == 1 else 's'} loaded; entry points: {autoload}", markup=False)
    for plugin in report["plugins"]:
        version = " ".join(v for v in (plugin["distribution"], plugin["version"]) if v) or "-"
        api = f"  plugin API {plugin['pluginApi']}" if plugin["pluginApi"] else ""
        out.print(
            f"\n[bold]{plugin['name']}[/bold]  {plugin['origin']}  {version}  ({plugin['module']}){api}"
        )
        if not plugin["contributes"]:
            out.print("    contributes nothing", markup=False)
        for kind, names in plugin["contributes"].items():
            if kind == "connectors":
                out.print("    connectors:", markup=False)
                for name in names:
                    if (plugin["name"], name) in replaced:
                        description = f"(overridden by {replaced[plugin['name'], name]})"
                    else:
                        description = descriptions.get(name) or ""
                    out.print(f"      {name}" + (f" — {description}" if description else ""), markup=False)
            else:
                out.print(f"    {_KIND_TITLES.get(kind, kind)}: {', '.join(names)}", markup=False)
    for plugin in report["plugins"]:
        for warning in plugin["warnings"]:
            out.print(f"\n{plugin['name']}: {warning}", markup=False)
    if report["overrides"]:
        out.print(
            f"\n[bold yellow]{len(report['overrides'])} overridden[/bold yellow] (--strict refuses these)"
        )
        for item in report["overrides"]:
            kind = _KIND_TITLES.get(KIND_KEYS[item["kind"]], item["kind"]).rstrip("s")
            out.print(f"  {kind} {item['name']}: {item['plugin']} replaces {item['replaced']}", markup=False)
    if report["failures"]:
        out.print(f"\n[bold red]{len(report['failures'])} failed[/bold red]")
        for failure in report["failures"]:
            version = " ".join(v for v in (failure["distribution"], failure["version"]) if v)
            where = f" ({version})" if version else ""
            out.print(f"  {failure['name']}{where}: {failure['error']}", markup=False)
    if report["disabled"]:
        out.print(f"\ndisabled by ACTIONRT_DISABLE_PLUGINS: {', '.join(report['disabled'])}", markup=False)


@app.command("new-connector", short_help="Scaffold a connector plugin.")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=PATH,
    default=Path("."),
    metavar="DIR",
    help="Where to create actionrt-NAME/ (default: here).",
)
@click.option("--form", is_flag=True, help="The API takes form-encoded bodies (Twilio, Stripe...), not JSON.")
def new_connector(name: str, directory: Path, form: bool) -> None:
    """Scaffold a connector plugin distribution NAME (e.g. acme: makes actionrt-acme with the
    connector acme.send) whose tests pass as generated."""
    from actionrt.scaffold import ConnectorProject, check_name, local_actionrt, write

    if "_" in name and check_name(name.replace("_", "-")) is None:
        # Package names treat `_` and `-` alike (PEP 503); the distribution is written with `-`.
        name = name.replace("_", "-")
        click.echo(f"using the name {name} (distribution names use '-')")
    problem = check_name(name)
    if problem is not None:
        click.echo(f"invalid name {name!r}: {problem}", err=True)
        raise SystemExit(EXIT_USAGE)
    source = local_actionrt()
    source_path, editable = source or (None, False)
    project = ConnectorProject(name, source_path, editable, form=form)
    try:
        root = write(project, directory)
    except FileExistsError as exc:
        fail(str(exc))
    click.echo(f"created {root} with the connector {project.connector}")
    if project.actionrt_source is not None:
        click.echo(f"actionrt comes from {project.actionrt_source} here: pyproject.toml points uv at it")
    click.echo(f"next: cd {root} && uv sync && uv run pytest")
