"""Command: worker — one process (or `--processes N`) of the fleet, serving a Redis queue."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from actionrt.cli.app import PATH, allow_private_network_option, app, log_format_option
from actionrt.cli.proxy_option import proxy_option, use_proxy


@app.command()
@click.argument("paths", nargs=-1, type=PATH)
@click.option(
    "--redis", "redis_url", required=True, metavar="URL", help="The fleet's Redis, redis://host:port/db."
)
@click.option("--queue", default="default", show_default=True, help="The queue to serve.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Calls one process runs at once.",
)
@allow_private_network_option
@click.option(
    "--capping", type=PATH, metavar="FILE", help="Capping rules (JSON), counted in Redis for the fleet."
)
@click.option(
    "--throttling", type=PATH, metavar="FILE", help="Throttling rules (JSON); throttled calls wait in Redis."
)
@click.option(
    "--claim-idle",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds before the calls of a worker that stopped answering are taken over.",
)
@click.option(
    "--max-deliveries",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Deliveries before a call goes to the dead-letter stream.",
)
@click.option(
    "--max-unsent-age",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="S",
    help="A call that ran out of time before sending anything is queued again while it is "
    "younger than S seconds (since first submitted); after that its result is final.",
)
@click.option(
    "--metrics-port", type=int, metavar="P", help="Port of /healthz and /readyz (process i of N uses P + i)."
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine.",
)
@click.option(
    "--from-service",
    is_flag=True,
    help="Serve the actions `actionrt serve --redis` publishes on this queue (no PATH): "
    "console edits reach the worker.",
)
@click.option(
    "--watch/--no-watch",
    default=True,
    show_default=True,
    help="Reload the actions when their files (or the service's catalog) change.",
)
@log_format_option
@proxy_option
def worker(
    paths: tuple[Path, ...],
    redis_url: str,
    queue: str,
    concurrency: int,
    allow_private_network: bool,
    capping: Path | None,
    throttling: Path | None,
    claim_idle: float,
    max_deliveries: int,
    max_unsent_age: float,
    metrics_port: int | None,
    processes: int,
    from_service: bool,
    watch: bool,
    log_format: str,
    proxy: str | None,
) -> None:
    """Serve the calls submitted to a Redis queue (docs/fleet.md): the actions of the files
    under PATH..., or with --from-service those the service publishes. SIGTERM drains: the calls
    already taken finish and are stored, then the process exits 0."""
    from actionrt.errors import ValidationError
    from actionrt.observability import configure_logging
    from actionrt.service.vault import SecretKeyError

    if from_service and paths:
        raise click.UsageError("give action files (PATH...) or --from-service, not both")
    if not from_service and not paths:
        raise click.UsageError("give the action files to serve (PATH...), or --from-service")

    use_proxy(proxy)  # ACTIONRT_PROXY: read by this process's runtimes and inherited by its children
    # `serve`'s logging: call lines made ready and written in batches, ~54,000 instructions and
    # a write less per call than through `logging.basicConfig`'s handler (callgrind of a worker;
    # bench/README.md "The fleet worker logs as serve does").
    configure_logging(log_format, root=True)
    if processes > 1:
        from actionrt.fleet.processes import supervise, worker_command

        def command(index: int) -> list[str]:
            arguments = ["worker", *map(str, paths), "--redis", redis_url, "--queue", queue]
            arguments += ["--concurrency", str(concurrency), "--claim-idle", str(claim_idle)]
            arguments += ["--max-deliveries", str(max_deliveries), "--max-unsent-age", str(max_unsent_age)]
            arguments += ["--allow-private-network"] if allow_private_network else []
            arguments += ["--capping", str(capping)] if capping else []
            arguments += ["--throttling", str(throttling)] if throttling else []
            arguments += ["--metrics-port", str(metrics_port + index)] if metrics_port is not None else []
            arguments += [] if watch else ["--no-watch"]
            arguments += ["--from-service"] if from_service else []
            arguments += ["--log-format", log_format]
            return worker_command(arguments)

        raise SystemExit(supervise(processes, command))

    from actionrt.fleet.worker import WorkerConfig

    config = WorkerConfig(
        paths=tuple(str(p) for p in paths),
        redis_url=redis_url,
        queue=queue,
        concurrency=concurrency,
        allow_private_network=allow_private_network,
        capping=str(capping) if capping else None,
        throttling=str(throttling) if throttling else None,
        claim_idle=claim_idle,
        max_deliveries=max_deliveries,
        max_unsent_age=max_unsent_age,
        watch=watch,
        from_service=from_service,
    )
    try:
        _run(_serve(config, metrics_port))
    except (ValidationError, SecretKeyError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None


async def _serve(config: Any, metrics_port: int | None) -> None:
    from actionrt.fleet.health import start_health_server
    from actionrt.fleet.worker import Worker

    worker = Worker(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    runner = await start_health_server(worker, metrics_port) if metrics_port is not None else None
    try:
        await worker.run()
    finally:
        if runner is not None:
            await runner.cleanup()


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, else on asyncio's own loop, the collector settled."""
    from actionrt.loops import best_loop_factory, tune_collector

    tune_collector()
    with asyncio.Runner(loop_factory=best_loop_factory()) as runner:
        runner.run(coroutine)
