"""The Prometheus metric families of actionrt (contract §6), one set per registry, and the
text rendering `GET /metrics` serves.

Labels stay bounded: an action's name, its jo_status_code, the endpoint's host, an auth scheme,
a queue name; never a URL path, a query or a customer value.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

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
        self.calls = CallCollector()
        registry.register(self.calls)
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
        self.token_requests = Counter(
            "actionrt_token_requests",
            "Requests to token endpoints by auth scheme and outcome (ok or error).",
            ("scheme", "outcome"),
            registry=registry,
        )
        self.fleet = FleetMetrics(registry)

    def action(self, name: str, host: str) -> ActionMetrics:
        """A new set of figures for one runtime's action `name` calling `host` (see
        `CallCollector` for why each runtime writes its own)."""
        return ActionMetrics(self, name, host)

    def token_request(self, scheme: str, ok: bool) -> None:
        """Count one request to a token endpoint."""
        self.token_requests.labels(scheme, "ok" if ok else "error").inc()


class CallStats:
    """One runtime's figures for one action, as plain numbers."""

    __slots__ = ("action", "attempts", "buckets", "by_status", "host", "in_flight", "sum")

    def __init__(self, action: str, host: str) -> None:
        self.action = action
        self.host = host
        self.by_status: dict[str, int] = {}
        self.attempts = 0
        self.buckets = [0] * (len(CALL_BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.in_flight = 0


class CallCollector(Collector):
    """`actionrt_calls_total`, `actionrt_call_duration_seconds`, `actionrt_attempts_total` and
    `actionrt_in_flight_calls`: the families every call touches.

    Hand-written over prometheus_client's `Counter`/`Histogram`/`Gauge` children for what they
    cost per call: six updates, each taking a lock; timed with timeit on the 2-core machine of
    bench/observability.py, ~2.4 µs a call (counter, histogram and counter 1.7 µs, the gauge up
    and down 0.7 µs), against ~0.4 µs for the additions here — and the whole budget is 3 µs.
    Here each runtime's action writes its own `CallStats` with plain additions, without a
    lock: a runtime runs its calls on one event loop thread, so nothing else writes them; a
    scrape reads them from another thread with copies the GIL makes whole (`dict(...)`,
    `list(...)`) and adds the runtimes up. The exposition is the library's: `collect()`
    yields its metric families.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[CallStats] = set()
        # What dropped runtimes counted, per (action, host): counters must not go down when a
        # runtime goes (the service builds one per test request), nor the list grow with them.
        self._retired: dict[tuple[str, str], CallStats] = {}

    def stats(self, action: str, host: str, owner: object) -> CallStats:
        """New figures for `owner` (a runtime's view of one action), folded into the retired
        ones when `owner` is garbage-collected."""
        found = CallStats(action, host)
        with self._lock:
            self._live.add(found)
        weakref.finalize(owner, self._retire, found)
        return found

    def _retire(self, stats: CallStats) -> None:
        with self._lock:
            self._live.discard(stats)
            kept = self._retired.get((stats.action, stats.host))
            if kept is None:
                kept = self._retired[stats.action, stats.host] = CallStats(stats.action, stats.host)
            for status, count in stats.by_status.items():
                kept.by_status[status] = kept.by_status.get(status, 0) + count
            kept.attempts += stats.attempts
            kept.buckets = [a + b for a, b in zip(kept.buckets, stats.buckets, strict=True)]
            kept.sum += stats.sum
            kept.in_flight += stats.in_flight

    def describe(self) -> Iterator[Metric]:
        return self._families(empty=True)

    def collect(self) -> Iterator[Metric]:
        return self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "actionrt_calls",
            "Calls by action and outcome (status is the jo_status_code).",
            labels=("action", "status"),
        )
        duration = HistogramMetricFamily(
            "actionrt_call_duration_seconds",
            "Whole-call time, retries, backoff and throttling queue included.",
            labels=("action",),
        )
        attempts = CounterMetricFamily(
            "actionrt_attempts", "Requests written to the endpoint, retries included.", labels=("action",)
        )
        in_flight = GaugeMetricFamily(
            "actionrt_in_flight_calls",
            "Calls to a host started and not finished (throttling waits and retries included).",
            labels=("host",),
        )
        if not empty:
            with self._lock:
                shards = [*self._live, *self._retired.values()]
            by_status: dict[tuple[str, str], int] = {}
            sent: dict[str, int] = {}
            histograms: dict[str, tuple[list[int], float]] = {}
            hosts: dict[str, int] = {}
            for shard in shards:
                name = shard.action
                for status, count in dict(shard.by_status).items():
                    by_status[name, status] = by_status.get((name, status), 0) + count
                sent[name] = sent.get(name, 0) + shard.attempts
                buckets, total = histograms.get(name, ([0] * len(shard.buckets), 0.0))
                histograms[name] = (
                    [a + b for a, b in zip(buckets, list(shard.buckets), strict=True)],
                    total + shard.sum,
                )
                hosts[shard.host] = hosts.get(shard.host, 0) + shard.in_flight
            bounds = [*(str(float(b)) for b in CALL_BUCKETS), "+Inf"]
            for (name, status), count in by_status.items():
                calls.add_metric((name, status), count)
            for name, count in sent.items():
                attempts.add_metric((name,), count)
            for name, (buckets, total) in histograms.items():
                cumulative = list(zip(bounds, itertools.accumulate(buckets), strict=True))
                duration.add_metric((name,), cumulative, total)
            for host, count in hosts.items():
                in_flight.add_metric((host,), count)
        yield from (calls, duration, attempts, in_flight)


class ActionMetrics:
    """One runtime's figures for one action: a call's bookkeeping is a few additions."""

    __slots__ = ("__weakref__", "capped", "name", "stats", "throttle_wait", "throttled")

    def __init__(self, metrics: Metrics, name: str, host: str) -> None:
        self.name = name
        self.stats = metrics.calls.stats(name, host, self)
        self.capped = metrics.capped.labels(name)
        self.throttled = metrics.throttled.labels(name)
        self.throttle_wait = metrics.throttle_wait

    def started(self) -> None:
        """A call to the host starts."""
        self.stats.in_flight += 1

    def finished(self, status: str, elapsed: float, attempts: int, queued: float) -> None:
        """Count one finished call."""
        stats = self.stats
        stats.in_flight -= 1
        by_status = stats.by_status
        # Status values are bounded: http_100..http_599 and three words.
        by_status[status] = by_status.get(status, 0) + 1
        stats.attempts += attempts
        stats.buckets[bisect_left(CALL_BUCKETS, elapsed)] += 1
        stats.sum += elapsed
        if status == "capped":
            self.capped.inc()
        if queued > 0.0:
            self.throttled.inc()
            self.throttle_wait.observe(queued)

    def cancelled(self) -> None:
        """A started call ended without a result (its task was cancelled)."""
        self.stats.in_flight -= 1


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
