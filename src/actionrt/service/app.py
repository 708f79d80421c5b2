"""`create_app(store_path, ...)`: the Starlette application of `actionrt serve` — the JSON API,
the console, /openapi.json — over one SQLite store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actionrt.guard import ALLOW_PRIVATE_NETWORK_ENV
from actionrt.http import Transport
from actionrt.observability import CONTENT_TYPE, CallRecorder, render_metrics
from actionrt.observability.timeline import WINDOWS, Timeline
from actionrt.service.api import Api
from actionrt.service.calls import Calls
from actionrt.service.catalog import Catalog
from actionrt.service.console import Console
from actionrt.service.openapi import openapi_json
from actionrt.service.rules import Rules
from actionrt.service.security import TOKEN_ENV, SecurityMiddleware, SecurityPolicy
from actionrt.service.state import ServiceState
from actionrt.service.store import Store
from actionrt.service.vault import Vault, load_key

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MAX_BODY = 1 << 20  # 1 MiB: an action document or a test request is far smaller


def create_app(
    store_path: str | Path,
    *,
    examples: str | Path | None = None,
    allow_private_network: bool | None = None,
    api_token: str | None = None,
    loopback_only: bool = True,
    secret_key: bytes | None = None,
    transport: Transport | None = None,
    entry_points: bool | None = None,
    metrics: CollectorRegistry | None = None,
    record_bodies: bool = False,
    env_secrets: Iterable[str] | None = None,
) -> Starlette:
    """The service over the store at `store_path` (created if missing).

    `examples`: a directory of action and journey files imported on the store's first start.
    `allow_private_network=None` reads `ACTIONRT_ALLOW_PRIVATE_NETWORK`. `api_token=None` reads
    `ACTIONRT_API_TOKEN`; without one the service must stay `loopback_only`. `secret_key`: the
    Fernet key sealing secrets (default: `ACTIONRT_SECRET_KEY`, else a development key kept
    beside the store, for loopback only). `transport` replaces the HTTP transport (tests).
    `metrics`: the registry calls count in and `/metrics` renders (default: prometheus_client's
    global one). `record_bodies`: call details keep request and response bodies.
    `env_secrets`: the environment variables actions may read, names and `PREFIX*` (default:
    `$ACTIONRT_ENV_SECRETS`, else none; `ACTIONRT_*` never).
    """
    if api_token is None:
        api_token = os.environ.get(TOKEN_ENV) or None
    if not loopback_only and api_token is None:
        raise ValueError(f"serving beyond loopback requires an API token: set {TOKEN_ENV}")
    if allow_private_network is None:
        allow_private_network = os.environ.get(ALLOW_PRIVATE_NETWORK_ENV, "").lower() in ("1", "true", "yes")
    store_path = Path(store_path)
    key = secret_key if secret_key is not None else load_key(store_path.parent, allow_generated=loopback_only)
    store = Store(store_path)
    catalog = Catalog(
        store,
        Vault(key),
        allow_private_network=allow_private_network,
        entry_points=entry_points,
        env_secrets=env_secrets,
    )
    catalog.load(Path(examples) if examples is not None else None)
    recorder = CallRecorder(record_bodies=record_bodies)
    timeline = Timeline()
    calls = Calls(
        catalog,
        store,
        transport=transport,
        metrics=metrics if metrics is not None else True,
        recorder=recorder,
        event_sinks=(timeline,),
    )
    state = ServiceState(store, catalog, Rules(store, calls.limits), calls, api_token is not None)
    policy = SecurityPolicy(api_token, loopback_only)
    openapi = openapi_json()

    async def openapi_route(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def metrics_route(request: Request) -> Response:
        return Response(render_metrics(metrics), media_type=CONTENT_TYPE)

    async def call_details_route(request: Request) -> Response:
        name, call_id = request.path_params["name"], request.path_params["callId"]
        details = recorder.get(name, call_id)
        if details is None:
            return JSONResponse({"error": f"no recent call {call_id} of action {name}"}, 404)
        return JSONResponse(details.as_json())

    async def monitoring_route(request: Request) -> Response:
        window = request.query_params.get("window", "hour")
        action = request.query_params.get("action") or None
        if window not in WINDOWS:
            return JSONResponse({"error": f"window: must be one of {', '.join(WINDOWS)}"}, 422)
        return JSONResponse(timeline.series("day" if window == "day" else "hour", action))

    async def recent_calls_route(request: Request) -> Response:
        action = request.query_params.get("action") or None
        limit = request.query_params.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return JSONResponse({"error": "limit: must be a whole number from 1 to 1000"}, 422)
        return JSONResponse({"calls": [d.summary() for d in recorder.recent(action, int(limit))]})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await calls.open()
        try:
            yield
        finally:
            await calls.aclose()
            store.close()

    app = Starlette(
        routes=[
            Route("/openapi.json", openapi_route, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
            Route("/actions/{name}/calls/{callId}", call_details_route, methods=["GET"]),
            Route("/monitoring/calls", monitoring_route, methods=["GET"]),
            Route("/monitoring/recent", recent_calls_route, methods=["GET"]),
            *Api(state).routes(),
            *Console(state, policy).routes(),
        ],
        middleware=[Middleware(SecurityMiddleware, policy=policy)],
        lifespan=lifespan,
        max_body_size=MAX_BODY,
    )
    app.state.service = state
    app.state.recorder = recorder
    app.state.timeline = timeline
    return app
