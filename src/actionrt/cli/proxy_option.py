"""`--proxy URL`, shared by `serve` and `worker`: every call (token calls too) through one
forward proxy, checked before anything starts and handed on as `ACTIONRT_PROXY`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from actionrt.cli.app import EXIT_USAGE

_F = TypeVar("_F", bound=Callable[..., Any])


def proxy_option(function: _F) -> _F:
    """`--proxy URL` (env: ACTIONRT_PROXY)."""
    return click.option(
        "--proxy",
        envvar="ACTIONRT_PROXY",
        metavar="URL",
        help="Forward proxy for every call, token calls too: http://[user:PASSWORD@]host:port; "
        "the password may be {{ secrets.NAME }} (read for the operator). Wins over HTTPS_PROXY/"
        "HTTP_PROXY, which are followed without it (NO_PROXY applies to both). Env: ACTIONRT_PROXY.",
    )(function)


def use_proxy(proxy: str | None) -> None:
    """Check `--proxy` (one line naming the problem, never the password) and hand it to every
    runtime of this process and its children; the environment's proxies are checked too."""
    from actionrt.http import PROXY_ENV, proxy_rules

    try:
        proxy_rules(proxy)
    except ValueError as exc:
        message = str(exc)
        click.echo(f"--{message}" if proxy and message.startswith("proxy:") else message, err=True)
        raise SystemExit(EXIT_USAGE) from None
    if proxy:
        os.environ[PROXY_ENV] = proxy
