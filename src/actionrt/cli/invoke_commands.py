"""`actionrt invoke`: one real call of an action, its result printed; exit 0 only when ok."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from actionrt.cli.app import app
from actionrt.cli.definition_commands import PrivateOpt
from actionrt.definition import Action
from actionrt.errors import UnknownActionError, ValidationError
from actionrt.registry import Registry
from actionrt.results import InvocationResult
from actionrt.runtime import Runtime

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PairsOpt = list[str] | None


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """`NAME=VALUE` options to a dict of strings: the runtime's coercion types them (`"12"`
    becomes 12 for an integer field)."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=option)
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
            raise typer.BadParameter(message, param_hint="--param") from None
    return params


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="The action's name.")],
    path: Annotated[Path, typer.Argument(help="An action file or a directory of actions.")],
    param: Annotated[
        PairsOpt,
        typer.Option("--param", "-p", help="A variable payload field: dotted.path=value (repeatable)."),
    ] = None,
    header: Annotated[
        PairsOpt, typer.Option("--header", "-H", help="A variable header: name=value (repeatable).")
    ] = None,
    query: Annotated[
        PairsOpt, typer.Option("--query", "-q", help="A variable query parameter: name=value (repeatable).")
    ] = None,
    dynamic_path: Annotated[
        str | None, typer.Option("--path", help="The dynamic part of the path, when the action has one.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds, 1 to 30 (default: the action's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    allow_private_network: PrivateOpt = False,
) -> None:
    """Call one action for real and print the result (exit 0 only when it is ok)."""
    params = parse_pairs(param, "--param")
    headers = parse_pairs(header, "--header")
    queries = parse_pairs(query, "--query")
    try:
        # The folder is validated whole, but only the named action's file is wired: the secrets
        # of the other actions need not be set to call this one.
        registry = Registry.from_path(path, allow_private_network=allow_private_network)
        action = registry.get(name)
        if action is None:
            raise UnknownActionError(name, list(registry.actions))
        runtime = Runtime.from_path(action.source, allow_private_network=allow_private_network or None)
    except ValidationError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        raise typer.Exit(2) from None
    except UnknownActionError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    params = read_lists(params, action)

    async def call() -> InvocationResult:
        async with runtime:
            return await runtime.invoke(
                name, params, headers=headers, query=queries, path=dynamic_path, timeout=timeout
            )

    result = asyncio.run(call())
    if as_json:
        sys.stdout.write(json.dumps(asdict(result), indent=2, default=str) + "\n")
    else:
        print_result(result)
    raise typer.Exit(0 if result.ok else 1)


def print_result(result: InvocationResult) -> None:
    """The result for a person: the status line, then the body or the error."""
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
