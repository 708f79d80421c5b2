"""Command: serve — the action service (HTTP API and web console) over a SQLite store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from actionrt.cli.app import app
from actionrt.loops import best_loop_name
from actionrt.service.security import TOKEN_ENV, is_loopback

DEFAULT_STORE = Path(".actionrt") / "store.db"


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; beyond loopback needs ACTIONRT_API_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
    store: Annotated[Path, typer.Option(help="The SQLite store (created on first start).")] = DEFAULT_STORE,
    examples: Annotated[
        Path | None,
        typer.Option(help="Actions and journeys imported on the store's first start (default: ./examples)."),
    ] = None,
    no_examples: Annotated[bool, typer.Option("--no-examples", help="Start with an empty store.")] = False,
    allow_private_network: Annotated[
        bool,
        typer.Option(
            "--allow-private-network",
            envvar="ACTIONRT_ALLOW_PRIVATE_NETWORK",
            help="Let actions call loopback and private addresses on any port (local development).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API and the console (Actions, Add, the configuration pane)."""
    import uvicorn

    from actionrt.service.app import create_app
    from actionrt.service.vault import SecretKeyError

    loopback = is_loopback(host)
    token = os.environ.get(TOKEN_ENV) or None
    if not loopback and token is None:
        typer.echo(f"refusing to serve on {host}: set {TOKEN_ENV} (checked as a bearer token)", err=True)
        raise typer.Exit(2)
    if examples is None and not no_examples and Path("examples").is_dir():
        examples = Path("examples")
    try:
        application = create_app(
            store,
            examples=None if no_examples else examples,
            allow_private_network=allow_private_network,
            api_token=token,
            loopback_only=loopback,
        )
    except SecretKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"actionrt service on http://{shown}:{port}/ (console: /console/actions, API: /openapi.json)")
    typer.echo(f"store: {store}", file=sys.stderr)
    uvicorn.run(
        application, host=host, port=port, log_level="info", server_header=False, loop=best_loop_name()
    )
