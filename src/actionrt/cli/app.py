"""The click group the command modules attach to, and what every command shares: `-h`,
`--version`, the exit codes (0 ok, 1 invalid or failed, 2 usage error) and one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from actionrt.errors import Problem
    from actionrt.registry import Registry

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
EXIT_FAILED = 1  # the files are invalid, the name unknown, the call or the check failed
EXIT_USAGE = 2  # the command line itself is wrong (click's own usage errors exit 2 too)

_F = TypeVar("_F", bound=Callable[..., Any])


@click.group(context_settings=CONTEXT)
@click.version_option(None, "-V", "--version", package_name="actionrt", message="%(prog)s %(version)s")
def app() -> None:
    """Validate, inspect and invoke journey custom actions.

    Exit codes: 0 ok, 1 invalid files or a failed call or check, 2 a usage error.
    """


def log_format_option(function: _F) -> _F:
    """`--log-format`: the process's log lines (`serve`, `worker`) as text or JSON."""
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log lines (one per call, and the process's own) as text or as one JSON object per line.",
    )(function)


def allow_private_network_option(function: _F) -> _F:
    """`--allow-private-network`: the destination guard lifted for local development."""
    return click.option(
        "--allow-private-network",
        is_flag=True,
        envvar="ACTIONRT_ALLOW_PRIVATE_NETWORK",
        help="Accept IP-address hosts, private and loopback destinations and other ports "
        "(local development, a stand-in on loopback). Env: ACTIONRT_ALLOW_PRIVATE_NETWORK.",
    )(function)


def json_option(function: _F) -> _F:
    """`--json`: machine-readable output on stdout, in the API's camelCase names."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")(function)


PATH = click.Path(path_type=Path)


def print_json(document: Any) -> None:
    """`document` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(*lines: str) -> NoReturn:
    """Each line on stderr, then exit 1."""
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(EXIT_FAILED)


def problem_json(problem: Problem) -> dict[str, str]:
    """One validation problem as JSON."""
    return {"source": problem.source, "path": problem.path, "message": problem.message}


def load_registry(paths: list[Path], allow_private_network: bool = False, as_json: bool = False) -> Registry:
    """Load a registry, or print every problem (one line each, or JSON) and exit 1."""
    from actionrt.errors import ValidationError
    from actionrt.registry import Registry

    try:
        return Registry.from_path(paths, allow_private_network=allow_private_network)
    except ValidationError as exc:
        if as_json:
            print_json({"ok": False, "problems": [problem_json(p) for p in exc.problems]})
            raise SystemExit(EXIT_FAILED) from None
        lines = [str(p) for p in exc.problems]
        if not allow_private_network and any(p.message.startswith(GUARDED) for p in exc.problems):
            lines.append(PRIVATE_NETWORK_HINT)
        fail(*lines)


# The refusals of `definition.check_url` that `--allow-private-network` lifts.
GUARDED = ("IP addresses are not allowed", "only the default port is allowed")
PRIVATE_NETWORK_HINT = (
    "hint: for a server on this machine or a private network (a stand-in, a local test), "
    "add --allow-private-network"
)
