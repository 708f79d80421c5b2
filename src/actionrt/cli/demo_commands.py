"""`actionrt demo`: a sample journey for many customers against a loopback stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from actionrt.cli.app import PATH, app, fail, json_option, print_json, problem_json

if TYPE_CHECKING:
    from actionrt.demo import DemoReport


@app.command(short_help="A sample journey against a stand-in.")
@click.option(
    "--examples",
    type=PATH,
    metavar="DIR",
    help="The actions and journeys to run (default: the examples shipped with actionrt).",
)
@click.option(
    "--customers",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="How many customers enter the journey.",
)
@click.option("--journey", default="welcome", show_default=True, help="The journey to run.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=64,
    show_default=True,
    help="Customers in flight at once.",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.02,
    show_default=True,
    help="Share of calls the stand-in answers 503 (retried).",
)
@json_option
def demo(
    examples: Path | None, customers: int, journey: str, concurrency: int, failure_rate: float, as_json: bool
) -> None:
    """Run a sample journey for many customers against a stand-in API on loopback, then summarise.
    Exit 1 when the examples do not load or a call was not answered."""
    import asyncio

    from actionrt.bundled import examples_dir
    from actionrt.demo import run_demo
    from actionrt.errors import ValidationError

    folder = examples if examples is not None else examples_dir()
    try:
        if as_json:
            report = asyncio.run(
                run_demo(
                    folder,
                    customers=customers,
                    journey_id=journey,
                    concurrency=concurrency,
                    failure_rate=failure_rate,
                )
            )
        else:
            report = _run_with_progress(folder, customers, journey, concurrency, failure_rate)
    except ValidationError as exc:
        if as_json:
            print_json({"ok": False, "problems": [problem_json(p) for p in exc.problems]})
            raise SystemExit(1) from None
        fail(*(str(p) for p in exc.problems))
    if as_json:
        print_json(report_json(report))
    else:
        print_report(report)
    answered = all(status.startswith("http_2") for status in report.statuses)
    raise SystemExit(0 if answered else 1)


def _run_with_progress(
    folder: Path, customers: int, journey: str, concurrency: int, failure_rate: float
) -> DemoReport:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from actionrt.demo import load_demo_registry, run_demo
    from actionrt.errors import ValidationError

    # Checked before the progress bar is drawn: a broken folder is one line, not an empty bar.
    registry = load_demo_registry(folder, "http://127.0.0.1:9")
    if journey not in registry.journeys:
        known = ", ".join(sorted(registry.journeys)) or "none"
        raise ValidationError.single(str(folder), "", f"no journey {journey!r} (known: {known})")
    with Progress(
        TextColumn("[bold]customers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(highlight=False),
    ) as progress:
        task = progress.add_task("customers", total=customers)
        return asyncio.run(
            run_demo(
                folder,
                customers=customers,
                journey_id=journey,
                concurrency=concurrency,
                failure_rate=failure_rate,
                progress=lambda n: progress.advance(task, n),
            )
        )


def report_json(report: DemoReport) -> dict[str, object]:
    """The summary of a demo run as JSON (camelCase, as the API)."""
    return {
        "customers": report.customers,
        "calls": report.calls,
        "seconds": round(report.seconds, 6),
        "callsPerSecond": round(report.calls_per_second, 1),
        "statuses": dict(sorted(report.statuses.items())),
        "retries": report.retries,
        "latencyP50": round(report.percentile(0.5), 6),
        "latencyP99": round(report.percentile(0.99), 6),
        "tokenRequests": report.token_requests,
        "branches": dict(sorted(report.branches.items())),
    }


def print_report(report: DemoReport) -> None:
    """The summary table of a demo run."""
    from rich.console import Console
    from rich.table import Table

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
    Console(highlight=False).print(table)
