"""`actionrt demo`: a sample journey for many customers against a loopback stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actionrt.cli.app import app
from actionrt.demo import DemoReport, run_demo
from actionrt.errors import ValidationError

console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command()
def demo(
    examples: Annotated[Path, typer.Option(help="Where the example actions and journeys are.")] = Path(
        "examples"
    ),
    customers: Annotated[int, typer.Option(min=1, help="How many customers enter the journey.")] = 10_000,
    journey: Annotated[str, typer.Option(help="The journey to run.")] = "welcome",
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Customers in flight at once.")] = 64,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of calls the stand-in answers 503.")
    ] = 0.02,
) -> None:
    """Run a sample journey for many customers against a stand-in API on loopback, then summarise."""
    with Progress(
        TextColumn("[bold]customers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("customers", total=customers)
        try:
            report = asyncio.run(
                run_demo(
                    examples,
                    customers=customers,
                    journey_id=journey,
                    concurrency=concurrency,
                    failure_rate=failure_rate,
                    progress=lambda n: progress.advance(task, n),
                )
            )
        except ValidationError as exc:
            progress.stop()
            for problem in exc.problems:
                err.print(str(problem), markup=False)
            raise typer.Exit(1) from None
    print_report(report)


def print_report(report: DemoReport) -> None:
    """The summary table of a demo run."""
    table = Table(title=f"{report.customers} customers, {report.calls} calls", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("calls/s", f"{report.calls_per_second:,.0f}")
    table.add_row("wall time", f"{report.seconds:.2f} s")
    for status, count in sorted(report.statuses.items()):
        table.add_row(f"status {status}", f"{count:,}")
    table.add_row("retries", f"{report.retries:,}")
    table.add_row("latency p50", f"{report.percentile(0.5) * 1000:.1f} ms")
    table.add_row("latency p99", f"{report.percentile(0.99) * 1000:.1f} ms")
    table.add_row("token requests", f"{report.token_requests:,}")
    for branch, count in sorted(report.branches.items()):
        table.add_row(f"journey {branch}", f"{count:,}")
    console.print(table)
