"""Commands on definitions: validate, list, show, schema."""

from __future__ import annotations

import functools
import json
import shutil
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from actionrt.cli.app import (
    PATH,
    allow_private_network_option,
    app,
    fail,
    json_option,
    load_registry,
    print_json,
)
from actionrt.secrets import has_secrets

if TYPE_CHECKING:
    from actionrt.definition import Action
    from actionrt.registry import Registry

paths_argument = click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=PATH)


def action_summary(registry: Registry, action: Action) -> dict[str, Any]:
    """The stable JSON shape of one action in `list --json`."""
    endpoint = action.definition.endpoint
    users = registry.used_in(action.name)
    return {
        "name": action.name,
        "description": action.definition.description,
        "method": endpoint.method,
        "host": action.host,
        "url": endpoint.url,
        "authentication": action.definition.auth_type,
        "usedIn": len(users),
        "journeys": [j.id for j in users],
        "source": action.source,
    }


@app.command(short_help="Check action and journey files.")
@paths_argument
@json_option
@allow_private_network_option
def validate(paths: tuple[Path, ...], as_json: bool, allow_private_network: bool) -> None:
    """Check action and journey files: exit 0 when all are valid, 1 otherwise (one line per
    problem, with its file and field path)."""
    registry = load_registry(list(paths), allow_private_network, as_json)
    if as_json:
        print_json(
            {"ok": True, "actions": len(registry.actions), "journeys": len(registry.journeys), "problems": []}
        )
        return
    click.echo(f"ok: {len(registry.actions)} actions, {len(registry.journeys)} journeys")


@app.command("list", short_help="List the actions.")
@paths_argument
@json_option
@allow_private_network_option
def list_actions(paths: tuple[Path, ...], as_json: bool, allow_private_network: bool) -> None:
    """List the actions with method, host, authentication type, Used in and description."""
    registry = load_registry(list(paths), allow_private_network)
    rows = [action_summary(registry, a) for _, a in sorted(registry.actions.items())]
    if as_json:
        print_json(rows)
        return
    width = shutil.get_terminal_size().columns
    click.echo(f"{len(rows)} action{'' if len(rows) == 1 else 's'}")
    for row in rows:
        click.echo(list_entry(row, width))


def list_entry(row: dict[str, Any], width: int) -> str:
    """One action of `list`: its name and description, then method, host, authentication and
    Used in, wrapped to `width` without ever cutting a name or a host."""
    used = row["usedIn"]
    head = row["name"] + (f" — {row['description']}" if row["description"] else "")
    facts = (
        f"{row['method']} {row['host']} · auth {row['authentication']} · "
        f"used in {used} journey{'' if used == 1 else 's'}"
    )
    wrap = functools.partial(
        textwrap.fill, width=max(width, 40), break_long_words=False, break_on_hyphens=False
    )
    return (
        "\n"
        + wrap(head, subsequent_indent="  ")
        + "\n"
        + wrap(facts, initial_indent="    ", subsequent_indent="    ")
    )


@app.command(short_help="Show one action in full.")
@click.argument("name")
@paths_argument
@json_option
@allow_private_network_option
def show(name: str, paths: tuple[Path, ...], as_json: bool, allow_private_network: bool) -> None:
    """Show one action in full, with the journeys that use it. Secret references are shown as
    written (`{{ secrets.CRM_TOKEN }}`); a secret written in the file itself is masked."""
    registry = load_registry(list(paths), allow_private_network)
    action = registry.get(name)
    if action is None:
        fail(f"unknown action {name!r} (known: {', '.join(sorted(registry.actions)) or 'none'})")
    users = registry.used_in(name)
    document = action.definition.model_dump(mode="json", exclude_defaults=True)
    document["authentication"] = masked(action.definition.authentication)
    for group in ("headers", "queryParameters"):
        for param in document["endpoint"].get(group, ()):
            if "value" in param:
                param["value"] = masked(param["value"], param["name"])
    certificate = document["endpoint"].get("clientCertificate")
    if certificate is not None and certificate.get("password") is not None:
        certificate["password"] = masked(certificate["password"], "password")
    if as_json:
        document["usedIn"] = [
            {"id": j.id, "name": j.definition.name, "status": j.definition.status} for j in users
        ]
        print_json(document)
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"[bold]{escape(name)}[/bold]  ({escape(action.source)})")
    if action.definition.description:
        out.print(action.definition.description, markup=False)
    out.print(f"Used in: {len(users)} journey{'' if len(users) == 1 else 's'}", markup=False)
    for journey in users:
        out.print(f"  - {journey.id} ({journey.definition.status}): {journey.definition.name}", markup=False)
    if action.variables:
        table = Table(title="Variables", title_justify="left")
        for column in ("Field", "Label", "Type", "Optional"):
            table.add_column(column, overflow="fold")
        for var in action.variables.values():
            table.add_row(var.path, var.label, var.type.value, "yes" if var.optional else "no")
        out.print(table)
    out.print(json.dumps(document, indent=2), markup=False)


SECRET_KEYS = ("password", "secret", "token", "value", "key", "assertion", "authorization")
# Keys that contain one of those words but name a setting, never a credential.
SETTING_KEYS = frozenset({"tokeninresponse", "tokentarget", "authorizationtype"})


def _secret_bearing(key: str) -> bool:
    lowered = key.lower()
    return lowered not in SETTING_KEYS and any(s in lowered for s in SECRET_KEYS)


def masked(value: Any, key: str = "") -> Any:
    """`value` with every secret written as a literal under a secret-bearing key replaced by
    `***`. A value that reads its secret through `{{ secrets.NAME }}` holds no secret: it is
    shown as written, so a reader sees which secret the action needs."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if isinstance(value, str) and _secret_bearing(key) and not has_secrets(value):
        return "***"
    return value


@app.command(short_help="Print the action file's JSON Schema.")
@click.option("--markdown", is_flag=True, help="The field-by-field reference page instead.")
def schema(markdown: bool) -> None:
    """Print the JSON Schema of the action file."""
    if markdown:
        from actionrt.schema_docs import render_reference

        click.echo(render_reference(), nl=False)
        return
    from actionrt.definition import action_json_schema

    print_json(action_json_schema())


def console() -> Any:
    """A rich console on stdout without highlighting, as wide as the terminal (`COLUMNS`)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)
