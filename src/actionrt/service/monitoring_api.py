"""The service's observability routes in the API document: `GET /metrics` (Prometheus text),
`GET /actions/{name}/calls/{callId}` (one recent call's details), and the Monitoring page's data
(`GET /monitoring/calls`, `GET /monitoring/recent`, `GET /monitoring/queue`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from actionrt.observability import CONTENT_TYPE, CallRecorder, render_metrics
from actionrt.observability.timeline import Timeline
from actionrt.service.api import errors
from actionrt.service.catalog import NotFoundError
from actionrt.service.queue_watch import QueueWatch

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

PROMETHEUS_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"description": "The Prometheus text format", "content": {"text/plain": {}}}
}


def build_monitoring_router(
    recorder: CallRecorder, timeline: Timeline, metrics: CollectorRegistry | None, queue: QueueWatch
) -> APIRouter:
    router = APIRouter(generate_unique_id_function=lambda route: route.name, tags=["monitoring"])

    @router.get("/metrics", response_class=Response, responses=PROMETHEUS_TEXT)
    async def metrics_text() -> Response:
        """Prometheus metrics of the calls (text format)."""
        return Response(render_metrics(metrics), media_type=CONTENT_TYPE)

    @router.get("/actions/{name}/calls/{callId}", response_model=dict[str, Any], responses=errors(404))
    async def call_details(name: str, callId: str) -> Response:
        """One recent call's details: each attempt's request and answer, credentials masked."""
        details = recorder.get(name, callId)
        if details is None:
            raise NotFoundError(f"no recent call {callId} of action {name}")
        return JSONResponse(details.as_json())

    @router.get("/monitoring/calls", response_model=dict[str, Any], responses=errors(422))
    async def monitoring_calls(
        window: Literal["hour", "day"] = "hour", action: str | None = None
    ) -> Response:
        """Calls by status, latency quantiles, errors, capped and throttled: the last hour by
        minute or the last day by 15 minutes (the Monitoring page's data)."""
        return JSONResponse(timeline.series(window, action or None))

    @router.get("/monitoring/recent", response_model=dict[str, Any], responses=errors(422))
    async def monitoring_recent(
        action: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="newest first")] = 50,
    ) -> Response:
        """The last calls kept with details (newest first): callId, action, status."""
        return JSONResponse({"calls": [d.summary() for d in recorder.recent(action or None, limit)]})

    @router.get("/monitoring/queue", response_model=dict[str, Any], responses=errors(422))
    async def monitoring_queue(window: Literal["hour", "day"] = "hour") -> Response:
        """With a fleet (`fleet` true): the queue's depth and dead letters, read now and over
        the last hour by minute or the last day by 15 minutes (the Monitoring page's data)."""
        if not queue.fleet:
            return JSONResponse({"fleet": False, "window": window})
        await queue.sample()
        return JSONResponse({"fleet": True, **queue.timeline.series(window)})

    return router
