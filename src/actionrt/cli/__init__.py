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
    worker_commands,
)
from actionrt.cli.app import EXIT_FAILED, EXIT_USAGE, app


def main() -> None:
    """Console-script entry point: a usage error is one line naming the command's help, exit 2."""
    import sys

    import click

    try:
        code = app.main(prog_name="actionrt", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `actionrt`: the help, as -h
        click.echo(exc.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "actionrt"
        click.echo(f"{where}: {exc.format_message().rstrip('.')} (see '{where} -h')", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
