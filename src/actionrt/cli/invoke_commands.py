"""`actionrt invoke`: one real call of an action, its result printed; exit 0 only when ok."""

from __future__ import annotations

import json
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

if TYPE_CHECKING:
    from actionrt.definition import Action
    from actionrt.results import InvocationResult


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """`NAME=VALUE` options to a dict of strings: the runtime's coercion types them (`"12"`
    becomes 12 for an integer field)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=option)
        values[name] = value
    return values


def read_lists(params: dict[str, Any], action: Action) -> dict[str, Any]:
    """The values of the action's list variables read as JSON (`tags=["a","b"]`,
    `items=[{"sku":"A"}]`); every other value stays the string it was written as, so
    `text=[URGENT] hi` is sent as written."""
    for name, value in params.items():
        variable = action.variables.get(name)
        if variable is None or not variable.type.is_list:
            continue
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError as exc:
            message = f'{name} is a {variable.type.value}: write it as JSON, e.g. ["a"] ({exc.msg})'
            raise click.BadParameter(message, param_hint="--param") from None
    return params


@app.command(short_help="Call one action for real.")
@click.argument("name")
@click.argument("path", type=PATH)
@click.option(
    "--param",
    "-p",
    "params",
    metavar="FIELD=VALUE",
    multiple=True,
    help="A variable payload field by its dotted path (repeatable).",
)
@click.option(
    "--header", "-H", "headers", metavar="NAME=VALUE", multiple=True, help="A variable header (repeatable)."
)
@click.option(
    "--query",
    "-q",
    "queries",
    metavar="NAME=VALUE",
    multiple=True,
    help="A variable query parameter (repeatable).",
)
@click.option(
    "--path", "dynamic_path", metavar="REST", help="The dynamic part of the path, when the action has one."
)
@click.option(
    "--timeout", type=click.FloatRange(1, 30), metavar="SECONDS", help="1 to 30 (default: the action's)."
)
@json_option
@allow_private_network_option
def invoke(
    name: str,
    path: Path,
    params: tuple[str, ...],
    headers: tuple[str, ...],
    queries: tuple[str, ...],
    dynamic_path: str | None,
    timeout: float | None,
    as_json: bool,
    allow_private_network: bool,
) -> None:
    """Call action NAME (from the file or folder PATH) for real and print the result; exit 0
    only when it is ok. Only NAME's own secrets need to be set."""
    values = parse_pairs(params, "--param")
    header_values = parse_pairs(headers, "--header")
    query_values = parse_pairs(queries, "--query")
    registry = load_registry([path], allow_private_network)
    action = registry.get(name)
    if action is None:
        fail(f"unknown action {name!r} (known: {', '.join(sorted(registry.actions)) or 'none'})")
    values = read_lists(values, action)
    from actionrt.errors import ValidationError
    from actionrt.runtime import Runtime

    try:
        runtime = Runtime.from_path(action.source, allow_private_network=allow_private_network or None)
    except ValidationError as exc:
        fail(*(str(p) for p in exc.problems))

    async def call() -> InvocationResult:
        async with runtime:
            return await runtime.invoke(
                name, values, headers=header_values, query=query_values, path=dynamic_path, timeout=timeout
            )

    import asyncio

    result = asyncio.run(call())
    if as_json:
        print_json(result.as_json())
    else:
        print_result(result)
    raise SystemExit(0 if result.ok else 1)


def print_result(result: InvocationResult) -> None:
    """The result for a person: the status line, then the body or the error."""
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    colour = "green" if result.ok else "red"
    out.print(
        f"[{colour}]{result.status}[/{colour}]  {result.method} {result.endpoint}  "
        f"attempts={result.attempts}  {result.elapsed * 1000:.0f} ms"
        + (f"  queued {result.queued_seconds:.2f} s" if result.queued_seconds else "")
    )
    if result.error:
        out.print(f"error: {result.error}", markup=False)
    if result.origin_error_class:
        out.print(f"first error: {result.origin_error_class} {result.origin_error_code}", markup=False)
    body = result.response if result.ok else result.error_response
    if body is not None:
        out.print(json.dumps(body, indent=2, ensure_ascii=False), markup=False)
