"""The Prometheus metric families of actionrt (contract §6), one set per registry, and the
text rendering `GET /metrics` serves.

Labels stay bounded: an action's name, its jo_status_code, the endpoint's host, an auth scheme,
a queue name; never a URL path, a query or a customer value.
"""

from __future__ import annotations

import threading
import weakref
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = [
    "CONTENT_TYPE",
    "ActionMetrics",
    "FleetMetrics",
    "Metrics",
    "metrics_for",
    "render_metrics",
]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The media type of `render_metrics`' output (the Prometheus text format)."""

# Whole calls (retries, throttling and backoff included): partners answer in ms to tens of s.
CALL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
THROTTLE_BUCKETS: Final = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every actionrt family registered in one `CollectorRegistry`. Get it with
    `metrics_for(registry)`: registering the same names twice in a registry is an error, so
    every runtime over one registry shares one `Metrics`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.calls = Counter(
            "actionrt_calls",
            "Calls by action and outcome (status is the jo_status_code).",
            ("action", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "actionrt_call_duration_seconds",
            "Whole-call time, retries, backoff and throttling queue included.",
            ("action",),
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "actionrt_attempts",
            "Requests written to the endpoint, retries included.",
            ("action",),
            registry=registry,
        )
        self.capped = Counter(
            "actionrt_capped", "Calls refused by a capping rule.", ("action",), registry=registry
        )
        self.throttled = Counter(
            "actionrt_throttled",
            "Calls that waited in a throttling queue.",
            ("action",),
            registry=registry,
        )
        self.throttle_wait = Histogram(
            "actionrt_throttle_wait_seconds",
            "Time a call waited in throttling queues (calls that waited).",
            buckets=THROTTLE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "actionrt_in_flight_requests",
            "Requests written to a host and not yet answered.",
            ("host",),
            registry=registry,
        )
        self.token_requests = Counter(
            "actionrt_token_requests",
            "Requests to token endpoints by auth scheme and outcome (ok or error).",
            ("scheme", "outcome"),
            registry=registry,
        )
        self.fleet = FleetMetrics(registry)
        self._actions: dict[str, ActionMetrics] = {}
        self._lock = threading.Lock()

    def action(self, name: str) -> ActionMetrics:
        """The bound children of one action (built once per name)."""
        found = self._actions.get(name)
        if found is None:
            with self._lock:
                found = self._actions.get(name)
                if found is None:
                    found = self._actions[name] = ActionMetrics(self, name)
        return found

    def token_request(self, scheme: str, ok: bool) -> None:
        """Count one request to a token endpoint."""
        self.token_requests.labels(scheme, "ok" if ok else "error").inc()


class ActionMetrics:
    """One action's children, bound once so a call's bookkeeping is a few dict and lock
    operations (`labels()` per call would cost more than the rest together)."""

    __slots__ = ("_calls", "_family", "attempts", "capped", "duration", "name", "throttle_wait", "throttled")

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.name = name
        self._family = metrics.calls
        self._calls: dict[str, Counter] = {}
        self.duration = metrics.duration.labels(name)
        self.attempts = metrics.attempts.labels(name)
        self.capped = metrics.capped.labels(name)
        self.throttled = metrics.throttled.labels(name)
        self.throttle_wait = metrics.throttle_wait

    def finished(self, status: str, elapsed: float, attempts: int, queued: float) -> None:
        """Count one finished call."""
        counter = self._calls.get(status)
        if counter is None:
            # Status values are bounded: http_100..http_599 and three words.
            counter = self._calls[status] = self._family.labels(self.name, status)
        counter.inc()
        self.duration.observe(elapsed)
        if attempts:
            self.attempts.inc(attempts)
        if status == "capped":
            self.capped.inc()
        if queued > 0.0:
            self.throttled.inc()
            self.throttle_wait.observe(queued)


class FleetMetrics:
    """The fleet's families (queue depth, claims, dead letters), for the worker to update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "actionrt_queue_depth",
            "Calls waiting in a fleet queue (not yet claimed by a worker).",
            ("queue",),
            registry=registry,
        )
        self.claims = Counter(
            "actionrt_queue_claims",
            "Calls claimed by workers from a fleet queue (taken over from a stopped worker included).",
            ("queue",),
            registry=registry,
        )
        self.dead_letters = Counter(
            "actionrt_dead_letters",
            "Calls moved to the dead-letter stream.",
            ("queue",),
            registry=registry,
        )

    def set_queue_depth(self, queue: str, depth: int) -> None:
        """Record the depth read from the queue's stream."""
        self.depth.labels(queue).set(depth)

    def claimed(self, queue: str, count: int = 1) -> None:
        """Count calls a worker claimed from the queue."""
        if count:
            self.claims.labels(queue).inc(count)

    def dead_lettered(self, queue: str, count: int = 1) -> None:
        """Count calls given up and moved to the dead letters."""
        if count:
            self.dead_letters.labels(queue).inc(count)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()
_by_registry_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry | None = None) -> Metrics:
    """The actionrt families in `registry` (default: prometheus_client's global one),
    registered on first use and shared after."""
    if registry is None:
        registry = REGISTRY
    with _by_registry_lock:
        found = _by_registry.get(registry)
        if found is None:
            found = _by_registry[registry] = Metrics(registry)
        return found


def render_metrics(registry: CollectorRegistry | None = None) -> bytes:
    """The registry in the Prometheus text format (`CONTENT_TYPE`), for `GET /metrics`."""
    return generate_latest(registry if registry is not None else REGISTRY)
