"""The typer application the command modules attach to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="actionrt",
    help="Validate, inspect and invoke journey custom actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
