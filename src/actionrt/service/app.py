"""`create_app(store_path, ...)`: the FastAPI application of `actionrt serve` — the JSON API,
the console, /openapi.json generated from the API's routes — over one SQLite store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from actionrt.guard import ALLOW_PRIVATE_NETWORK_ENV
from actionrt.http import Transport
from actionrt.observability import CallRecorder
from actionrt.observability.timeline import Timeline
from actionrt.service import problems
from actionrt.service.api import DOCUMENT_MODELS, build_router
from actionrt.service.calls import Calls
from actionrt.service.catalog import Catalog
from actionrt.service.console import Console
from actionrt.service.hot_path import InvokeHotPath
from actionrt.service.monitoring_api import build_monitoring_router
from actionrt.service.queue_watch import QueueDepthSource, QueueWatch
from actionrt.service.rules import Rules
from actionrt.service.security import TOKEN_ENV, Receive, Scope, SecurityMiddleware, SecurityPolicy, Send
from actionrt.service.state import ServiceState
from actionrt.service.store import Store
from actionrt.service.vault import Vault, load_key

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from actionrt.fleet.catalog import CatalogPublisher

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
    queue_depth: QueueDepthSource | None = None,
    redis_url: str | None = None,
    queue: str = "default",
) -> ServiceApp:
    """The service over the store at `store_path` (created if missing).

    `examples`: a directory of action and journey files imported on the store's first start.
    `allow_private_network=None` reads `ACTIONRT_ALLOW_PRIVATE_NETWORK`. `api_token=None` reads
    `ACTIONRT_API_TOKEN`; without one the service must stay `loopback_only`. `secret_key`: the
    Fernet key sealing secrets (default: `ACTIONRT_SECRET_KEY`, else a development key kept
    beside the store, for loopback only). `transport` replaces the HTTP transport (tests).
    `metrics`: the registry calls count in and `/metrics` renders (default: prometheus_client's
    global one). `record_bodies`: call details keep request and response bodies.
    `env_secrets`: the environment variables actions may read, names and `PREFIX*` (default:
    `$ACTIONRT_ENV_SECRETS`, else none; `ACTIONRT_*` never). `redis_url`: the fleet's Redis;
    `POST /actions/{name}/invoke?async=true` then queues calls on `queue` for `actionrt worker`
    processes, `GET /calls/{callId}` answers their results, the Monitoring page shows the
    queue's depth, and the actions are published there for the workers of `queue` started with
    `--from-service`, again after every change (docs/fleet.md). `queue_depth`: reads a fleet
    queue's depth (`Queue.depth`) for the Monitoring page without `redis_url` (also settable
    later as `app.state.service.queue_depth`).
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
        timeline=timeline,
    )
    state = ServiceState(
        store, catalog, Rules(store, calls.limits), calls, api_token is not None, queue_depth=queue_depth
    )
    if redis_url is not None:
        from actionrt.fleet.queue import Queue

        # Submits are checked against the service's current actions: refused like invoke.
        state.redis_url = redis_url
        state.queue = Queue(redis_url, name=queue, actions=lambda: catalog.registry)
    queue_watch = QueueWatch(state.queue_depth_source)
    policy = SecurityPolicy(api_token, loopback_only)
    publisher = _publisher(catalog, redis_url, queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await calls.open()
        queue_watch.start()
        if publisher is not None:
            publisher.start()
        try:
            yield
        finally:
            if publisher is not None:
                await publisher.aclose()
            await queue_watch.aclose()
            if state.queue is not None:
                await state.queue.aclose()
            await calls.aclose()
            store.close()

    app = ServiceApp(
        InvokeHotPath(state, policy, MAX_BODY),
        title="actionrt service",
        version=version("actionrt"),
        summary="Configure, test and invoke custom actions; capping and throttling rules.",
        routes=Console(state, policy).routes(),
        middleware=[Middleware(SecurityMiddleware, policy=policy)],
        lifespan=lifespan,
        max_body_size=MAX_BODY,
        docs_url=None,
        redoc_url=None,
        separate_input_output_schemas=False,
    )
    # The API's routes sit in the application's own flat list: Starlette then finds every
    # method of a path (the `Allow` of a 405) and FastAPI documents exactly these routes. They
    # come before the console's, invoke first: routes are matched in order, once per request.
    api = (
        build_router(state).routes + build_monitoring_router(recorder, timeline, metrics, queue_watch).routes
    )
    hot = [route for route in api if getattr(route, "name", None) == "invoke"]
    app.router.routes[:0] = hot + [route for route in api if route not in hot]
    problems.install(app)
    if state.queue is not None:
        problems.install_fleet(app)
    app.openapi = lambda: _document(app, api)  # type: ignore[method-assign]
    app.state.service = state
    app.state.recorder = recorder
    app.state.timeline = timeline
    app.state.queue_watch = queue_watch
    app.state.publisher = publisher
    return app


class ServiceApp(FastAPI):
    """The FastAPI application with the invoke hot path (`hot_path.py`) in front of its stack."""

    def __init__(self, hot_path: InvokeHotPath, **settings: Any) -> None:
        super().__init__(**settings)
        self.hot_path = hot_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.hot_path.serve(scope, receive, send, super().__call__)


def _publisher(catalog: Catalog, redis_url: str | None, queue: str) -> CatalogPublisher | None:
    """What keeps the fleet's workers fed with the catalog (with a Redis only)."""
    if redis_url is None:
        return None
    from actionrt.fleet.catalog import CatalogPublisher

    return CatalogPublisher(catalog, redis_url, queue)


def _document(app: FastAPI, api: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document, generated once from the routes: errors as problem details, and
    the schemas of the documents the domain validates added to the components."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=api,
        separate_input_output_schemas=False,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    for name, model in DOCUMENT_MODELS.items():
        schema = model.model_json_schema(ref_template=ref, mode="validation", by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    declared = {
        (route.path_format, method.lower()): set(route.responses)
        for route in api
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    problem = {"application/problem+json": {"schema": {"$ref": ref.format(model="ProblemDetails")}}}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            # The security layer's refusals (security.py), on every route.
            answers["401"] = {"description": "The service has an API token: send it as a bearer token"}
            answers["403"] = {
                "description": "A Host that is not loopback on a loopback service; a state-changing "
                "request without a JSON body or X-CSRF-Token, or from another site"
            }
            if "422" in answers and 422 not in declared[(path, method)]:
                del answers["422"]  # FastAPI adds it to every route with parameters
            for status, answer in answers.items():
                if status.startswith(("4", "5")):
                    answer["content"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
