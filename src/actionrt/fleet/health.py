"""The worker's HTTP side on the metrics port: `/healthz` (alive), `/readyz` (Redis reachable,
actions loaded) and `/metrics` (Prometheus text, the queue's depth read at each scrape).
`ROUTES` is the table: other routes are added by appending to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiohttp import web

__all__ = ["ROUTES", "HealthSource", "Route", "start_health_server"]


class HealthSource(Protocol):
    @property
    def ready(self) -> bool: ...

    async def observe(self) -> None:
        """Bring the gauges read at a scrape up to date (the queue's depth)."""
        ...


Route = tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    ready = request.app[SOURCE].ready
    return web.json_response({"status": "ready" if ready else "not ready"}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    from actionrt.observability import CONTENT_TYPE, render_metrics

    await request.app[SOURCE].observe()
    return web.Response(body=render_metrics(), headers={"Content-Type": CONTENT_TYPE})


SOURCE = web.AppKey("source", HealthSource)
ROUTES: list[Route] = [("/healthz", _healthz), ("/readyz", _readyz), ("/metrics", _metrics)]
"""GET routes served on the metrics port; add to it before the worker starts."""


async def start_health_server(
    source: HealthSource, port: int, *, host: str = "0.0.0.0", routes: Iterable[Route] = ()
) -> web.AppRunner:
    """Serve the routes on `port` (0: any free port, read back with `bound_port`)."""
    app = web.Application()
    app[SOURCE] = source
    for path, handler in [*ROUTES, *routes]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the health server is not listening")
