"""The `actionrt` command: one typer app; each module of this package adds its commands."""

from __future__ import annotations

from actionrt.cli import (  # noqa: F401  (each module registers its commands on `app`)
    auth_commands,
    definition_commands,
    demo_commands,
    invoke_commands,
    plugin_commands,
    serve_commands,
)
from actionrt.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
