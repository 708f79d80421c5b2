"""The `actionrt` command: one click group; each module of this package adds its commands.
Modules import the runtime inside their commands, so `actionrt --help` stays fast."""

from __future__ import annotations

from actionrt.cli import (  # noqa: F401  (each module registers its commands on `app`)
    auth_commands,
    definition_commands,
    demo_commands,
    invoke_commands,
    plugin_commands,
    serve_commands,
    standin_commands,
)
from actionrt.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="actionrt")


__all__ = ["app", "main"]
