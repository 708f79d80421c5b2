"""Commands on definitions: validate, list, show, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from actionrt.cli.app import app
from actionrt.definition import Action, action_json_schema
from actionrt.errors import ValidationError
from actionrt.registry import Registry
from actionrt.schema_docs import render_reference

# Piped output is not cut to 80 columns: a table is only readable whole.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PathsArg = Annotated[list[Path], typer.Argument(help="Action or journey files, or directories.")]
PrivateOpt = Annotated[
    bool,
    typer.Option(
        "--allow-private-network",
        envvar="ACTIONRT_ALLOW_PRIVATE_NETWORK",
        help="Accept IP-address hosts, private and loopback destinations, other ports (local development).",
    ),
]


def load_registry(paths: list[Path], allow_private_network: bool = False) -> Registry:
    """Load a registry or print every problem and exit 1."""
    try:
        return Registry.from_path(paths, allow_private_network=allow_private_network)
    except ValidationError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        raise typer.Exit(1) from None


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


@app.command()
def validate(paths: PathsArg, allow_private_network: PrivateOpt = False) -> None:
    """Check action and journey files: exit 0 when all are valid, 1 otherwise."""
    registry = load_registry(paths, allow_private_network)
    out.print(f"ok: {len(registry.actions)} actions, {len(registry.journeys)} journeys", markup=False)


@app.command("list")
def list_actions(
    path: PathsArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    allow_private_network: PrivateOpt = False,
) -> None:
    """List the actions with method, host, authentication type and Used in."""
    registry = load_registry(path, allow_private_network)
    rows = [action_summary(registry, a) for _, a in sorted(registry.actions.items())]
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False)
        return
    table = Table(title=f"{len(rows)} actions", title_justify="left")
    for column in ("Name", "Method", "Host", "Authentication", "Used in"):
        table.add_column(column, no_wrap=True)
    table.add_column("Description", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            row["method"],
            row["host"],
            row["authentication"],
            str(row["usedIn"]),
            row["description"] or "",
        )
    out.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The action's name.")],
    path: PathsArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    allow_private_network: PrivateOpt = False,
) -> None:
    """Show one action in full, with the journeys that use it."""
    registry = load_registry(path, allow_private_network)
    action = registry.get(name)
    if action is None:
        err.print(f"unknown action {name!r} (known: {', '.join(sorted(registry.actions))})", markup=False)
        raise typer.Exit(1)
    users = registry.used_in(name)
    document = action.definition.model_dump(mode="json", exclude_defaults=True)
    document["authentication"] = _masked(action)
    for group in ("headers", "queryParameters"):
        for param in document["endpoint"].get(group, ()):
            if "value" in param and _secret_bearing(param["name"]):
                param["value"] = "***"
    certificate = document["endpoint"].get("clientCertificate")
    if certificate is not None and certificate.get("password") is not None:
        certificate["password"] = "***"
    if as_json:
        document["usedIn"] = [
            {"id": j.id, "name": j.definition.name, "status": j.definition.status} for j in users
        ]
        out.print(json.dumps(document, indent=2), markup=False)
        return
    out.print(f"[bold]{name}[/bold]  ({action.source})")
    if action.definition.description:
        out.print(action.definition.description, markup=False)
    out.print(f"Used in: {len(users)} journey{'' if len(users) == 1 else 's'}", markup=False)
    for journey in users:
        out.print(f"  - {journey.id} ({journey.definition.status}): {journey.definition.name}", markup=False)
    if action.variables:
        table = Table(title="Variables", title_justify="left")
        for column in ("Field", "Label", "Type", "Optional"):
            table.add_column(column)
        for var in action.variables.values():
            table.add_row(var.path, var.label, var.type.value, "yes" if var.optional else "no")
        out.print(table)
    out.print(json.dumps(document, indent=2), markup=False)


def _masked(action: Action) -> dict[str, Any]:
    """The authentication block with secret-bearing values masked."""
    dumped = action.auth.model_dump(mode="json", by_alias=True, exclude_none=True)
    masked: dict[str, Any] = _mask(dumped)
    return masked


SECRET_KEYS = ("password", "secret", "token", "value", "key", "assertion", "authorization")
# Keys that contain one of those words but name a setting, never a credential.
SETTING_KEYS = frozenset({"tokeninresponse", "tokentarget", "authorizationtype"})


def _secret_bearing(key: str) -> bool:
    lowered = key.lower()
    return lowered not in SETTING_KEYS and any(s in lowered for s in SECRET_KEYS)


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str) and _secret_bearing(key):
        return "***"
    return value


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The field-by-field reference page instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the action file."""
    if markdown:
        out.print(render_reference(), markup=False, end="")
        return
    out.print(json.dumps(action_json_schema(), indent=2), markup=False)
