"""`Limits`: the runtime's capping and throttling; `EndpointLimiter`: one endpoint's admission.

Rules are matched once per endpoint URL (and again only after a rule is deployed or
undeployed); an attempt then runs one straight `admit()` on the backend's gate. URLs matching
the same rules share one gate.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from actionrt.limits.admission import Admission, CapSpec, Gate, GateSpec, Sleep, ThrottleSpec
from actionrt.limits.connections import ConnectionGate
from actionrt.limits.memory import MemoryBackend
from actionrt.limits.rules import (
    CappingRule,
    ThrottlingRule,
    UrlPattern,
    parse_capping_rules,
    parse_throttling_rules,
)
from actionrt.limits.window import LatencyTracker

__all__ = [
    "DEFAULT_CAP",
    "DEFAULT_MAX_QUEUE_WAIT",
    "SLOW_HOST_CAP",
    "SLOW_HOST_LATENCY",
    "Backend",
    "EndpointLimiter",
    "Limits",
    "RuleEntry",
]

DEFAULT_CAP: Final = (300_000, 60.0)
"""Calls per seconds, per host, always active."""
SLOW_HOST_CAP: Final = (150_000, 30.0)
"""Calls per seconds, per host, while the host's recent median latency is over the threshold."""
SLOW_HOST_LATENCY: Final = 0.75
DEFAULT_MAX_QUEUE_WAIT: Final = 6 * 3600.0
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_ENDPOINT_CACHE_SIZE: Final = 4096

Rule = CappingRule | ThrottlingRule


class Backend(Protocol):
    """Where the counters live: `MemoryBackend` (one process) or `RedisBackend` (shared)."""

    def gate(self, spec: GateSpec) -> Gate: ...

    def connection_gate(self, key: str, limit: int) -> ConnectionGate: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class RuleEntry:
    """A created rule; only deployed ones apply."""

    uid: str
    rule: Rule
    deployed: bool

    @property
    def kind(self) -> str:
        return "capping" if isinstance(self.rule, CappingRule) else "throttling"


@dataclass(frozen=True, slots=True)
class _Binding:
    """What the endpoints matching one set of rules share: the gate, the connection limit."""

    gate: Gate
    max_connections: int | None
    latency: LatencyTracker


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    pattern: UrlPattern


class Limits:
    """Capping and throttling for one runtime; built once, shared by every action.

    A default cap of 300,000 calls per 60 s per host is always active, and 150,000 per 30 s
    for a host whose median latency over its last 100 calls is above 0.75 s.
    """

    def __init__(
        self,
        capping_rules: Iterable[CappingRule | Mapping[str, Any]] | str = (),
        throttling_rules: Iterable[ThrottlingRule | Mapping[str, Any]] | str = (),
        backend: Backend | None = None,
        max_queue_wait: float = DEFAULT_MAX_QUEUE_WAIT,
        *,
        default_cap: tuple[int, float] = DEFAULT_CAP,
        slow_host_cap: tuple[int, float] = SLOW_HOST_CAP,
        slow_host_latency: float = SLOW_HOST_LATENCY,
        sleep: Sleep | None = None,
    ) -> None:
        if slow_host_cap[1] > default_cap[1]:
            raise ValueError("the slow-host cap's period must not exceed the default cap's")
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self.max_queue_wait = max_queue_wait
        self.default_cap = default_cap
        self.slow_host_cap = slow_host_cap
        self.slow_host_latency = slow_host_latency
        self._sleep = sleep
        self.generation = 0
        self._entries: dict[str, RuleEntry] = {}
        self._by_origin: dict[tuple[str, str, int], list[_Compiled]] = {}
        self._everywhere: list[_Compiled] = []
        self._latency: dict[str, LatencyTracker] = {}
        self._endpoints: dict[tuple[str, str], EndpointLimiter] = {}
        self._gates: dict[tuple[str, ...], _Binding] = {}
        for capping in parse_capping_rules(capping_rules):
            self.deploy(self.create(capping))
        for throttling in parse_throttling_rules(throttling_rules):
            self.deploy(self.create(throttling))

    # -- rules -------------------------------------------------------------------------------

    def create(self, rule: Rule) -> str:
        """Add a rule, not yet deployed; returns its uid (the same for the same rule)."""
        uid = rule.uid
        self._entries.setdefault(uid, RuleEntry(uid, rule, deployed=False))
        return uid

    def create_capping(self, data: Mapping[str, Any] | CappingRule) -> str:
        """Add a capping rule in its published JSON shape; raises ValidationError if bad."""
        return self.create(parse_capping_rules(data)[0])

    def create_throttling(self, data: Mapping[str, Any] | ThrottlingRule) -> str:
        """Add a throttling rule in its published JSON shape; raises ValidationError if bad."""
        return self.create(parse_throttling_rules(data)[0])

    def deploy(self, uid: str) -> None:
        self._entry(uid).deployed = True
        self._reindex()

    def undeploy(self, uid: str) -> None:
        self._entry(uid).deployed = False
        self._reindex()

    def delete(self, uid: str) -> None:
        del self._entries[self._entry(uid).uid]
        self._reindex()

    def get(self, uid: str) -> RuleEntry:
        return self._entry(uid)

    def rules(self, *, deployed: bool | None = None) -> list[RuleEntry]:
        """Every created rule, or only the deployed (True) / undeployed (False) ones."""
        return [e for e in self._entries.values() if deployed is None or e.deployed == deployed]

    def _entry(self, uid: str) -> RuleEntry:
        try:
            return self._entries[uid]
        except KeyError:
            raise KeyError(f"no rule with uid {uid!r}") from None

    def _reindex(self) -> None:
        self._by_origin = {}
        self._everywhere = []
        for entry in self._entries.values():
            if not entry.deployed:
                continue
            compiled = _Compiled(entry.rule, entry.rule.pattern())
            origin = compiled.pattern.origin
            if origin is None:
                self._everywhere.append(compiled)
            else:
                self._by_origin.setdefault(origin, []).append(compiled)
        # Endpoint limiters compare this number on each attempt and re-match their own URL
        # when it moved; URLs may now group differently, so the shared gates are rebuilt.
        self.generation += 1
        self._gates.clear()

    def matching(self, method: str, url: str) -> list[Rule]:
        """The deployed rules that apply to a call."""
        return self._match(method.upper(), *_split(url))

    def _match(self, method: str, scheme: str, host: str, port: int, path: str) -> list[Rule]:
        found = [*self._by_origin.get((scheme, host, port), ()), *self._everywhere]
        return [c.rule for c in found if method in c.rule.methods and c.pattern.matches_path(path)]

    # -- the call path -----------------------------------------------------------------------

    def endpoint(self, method: str, url: str) -> EndpointLimiter:
        """The limiter of one endpoint. Cheap to call per call, so an action with a dynamic path
        may ask with each call's full URL: limiters are cached by URL, and URLs matching the same
        rules share one gate (one count)."""
        key = (method, url)
        limiter = self._endpoints.get(key)
        if limiter is None:
            if len(self._endpoints) >= _ENDPOINT_CACHE_SIZE:
                self._endpoints.clear()
            limiter = self._endpoints[key] = EndpointLimiter(self, method, url)
        return limiter

    def _binding(self, method: str, url: str) -> _Binding:
        """The gate (and connection limit) of the rules matching `url` now, shared by every URL
        of the same host that matches the same rules."""
        method = method.upper()
        scheme, host, port, path = _split(url)
        rules = self._match(method, scheme, host, port, path)
        key = (method, host, *(r.uid for r in rules))
        binding = self._gates.get(key)
        if binding is None:
            if len(self._gates) >= _ENDPOINT_CACHE_SIZE:
                self._gates.clear()
            spec, connections = self._gate_spec(host, rules)
            binding = self._gates[key] = _Binding(self.backend.gate(spec), connections, spec.latency)
        return binding

    def latency(self, host: str) -> LatencyTracker:
        """The recent-latency tracker of a host (created on first use)."""
        host = host.lower()
        tracker = self._latency.get(host)
        if tracker is None:
            tracker = self._latency[host] = LatencyTracker(self.slow_host_latency)
        return tracker

    def record_latency(self, host: str, seconds: float) -> None:
        """Feed one call's latency; decides whether the host gets the slow-host cap."""
        self.latency(host).record(seconds)

    def _gate_spec(self, host: str, rules: list[Rule]) -> tuple[GateSpec, int | None]:
        caps = tuple(
            CapSpec(
                f"cap:{r.uid}",
                r.max_calls,
                r.period_seconds,
                f"capped: rule {r.label!r} allows {r.max_calls} calls per {r.limits.rating.period_in_ms} ms",
            )
            for r in rules
            if isinstance(r, CappingRule)
        )
        throttles = tuple(
            ThrottleSpec(
                f"throttle:{r.uid}",
                r.max_throughput,
                f"throttled by rule {r.label!r} ({r.max_throughput} calls/s)",
            )
            for r in rules
            if isinstance(r, ThrottlingRule)
        )
        connections = [
            r.max_http_connections
            for r in rules
            if isinstance(r, CappingRule) and r.max_http_connections is not None
        ]
        limit, period = self.default_cap
        slow_limit, slow_period = self.slow_host_cap
        spec = GateSpec(
            host=CapSpec(
                f"host:{host}",
                limit,
                period,
                f"capped: default cap of {limit} calls per {period:g} s for host {host}",
            ),
            slow_host=CapSpec(
                f"host:{host}",
                slow_limit,
                slow_period,
                f"capped: slow host {host} (median latency over {self.slow_host_latency:g} s) "
                f"is capped at {slow_limit} calls per {slow_period:g} s",
            ),
            latency=self.latency(host),
            caps=caps,
            throttles=throttles,
            max_queue_wait=self.max_queue_wait,
            sleep=self._sleep,
        )
        return spec, min(connections) if connections else None

    def connection_gate(self, rule: CappingRule) -> ConnectionGate:
        """The gate holding `rule`'s `maxHttpConnections`: per process in memory, shared by
        every process of the fleet with the Redis backend (rules of the same content, the same
        slots)."""
        return self.backend.connection_gate(f"connections:{rule.uid}", rule.max_http_connections or 1)

    async def aclose(self) -> None:
        await self.backend.aclose()


class EndpointLimiter:
    """One endpoint's admission before every attempt, retries too: `limiter.admit_now()`, and
    when it answers None (a throttling queue, a shared backend), `await limiter.admit()`."""

    __slots__ = ("_gate", "_generation", "_limits", "latency", "max_connections", "method", "url")

    def __init__(self, limits: Limits, method: str, url: str) -> None:
        self._limits = limits
        self.method = method
        self.url = url
        self._bind()

    def _bind(self) -> None:
        binding = self._limits._binding(self.method, self.url)
        self._gate: Gate = binding.gate
        self.max_connections = binding.max_connections
        self.latency = binding.latency
        self._generation = self._limits.generation

    def admit_now(self) -> Admission | None:
        """Take a slot for one attempt when the answer needs no wait (the in-memory backend
        without a throttling rule): no coroutine, ~700 instructions less an attempt than
        `admit()` (callgrind, the bench's call on a canned transport). None: `await admit()`."""
        if self._generation != self._limits.generation:
            self._bind()
        return self._gate.admit_now()

    def admit(self) -> Coroutine[Any, Any, Admission]:
        """Take a slot for one attempt: capped at once, or after waiting in a throttling queue."""
        if self._generation != self._limits.generation:
            self._bind()
        return self._gate.admit()

    def record_latency(self, seconds: float) -> None:
        """The same as `Limits.record_latency` for this endpoint's host, without a lookup."""
        self.latency.record(seconds)

    @property
    def rules(self) -> list[Rule]:
        """The deployed rules that apply to this endpoint now."""
        return self._limits.matching(self.method, self.url)


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    return scheme, host, parts.port or _DEFAULT_PORTS[scheme], parts.path or "/"
