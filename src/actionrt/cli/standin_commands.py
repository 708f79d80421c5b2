"""`actionrt standin`: the demo's stand-in API kept running on loopback, for a first real call."""

from __future__ import annotations

import contextlib

import click

from actionrt.cli.app import app, fail


@app.command(short_help="Run a stand-in API on loopback.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8701,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of calls answered 503 (to watch retries).",
)
def standin(port: int, failure_rate: float) -> None:
    """Run a stand-in third-party API on loopback until Ctrl-C: every path answers 200 with
    {"ok": true}, POST /token hands out bearer tokens the other paths then accept. Call it
    from an action whose URL is http://127.0.0.1:PORT/... with --allow-private-network."""
    import asyncio

    from actionrt.standin import StandIn

    async def serve() -> None:
        server = StandIn(failure_rate=failure_rate, port=port)
        try:
            await server.start()
        except OSError as exc:
            fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
        click.echo(f"stand-in API on {server.base_url}/ (Ctrl-C to stop)", err=False)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        asyncio.run(serve())
