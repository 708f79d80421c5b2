"""Capping and throttling: rules in their published JSON shapes, exact sliding windows, and
backends in memory (default) or in Redis (shared by several processes)."""

from typing import TYPE_CHECKING

from actionrt.limits.admission import (
    ADMITTED,
    LIMITS_UNAVAILABLE,
    Admission,
    CapSpec,
    Gate,
    GateSpec,
    LimitsUnavailableError,
    ThrottleSpec,
)
from actionrt.limits.limiter import (
    DEFAULT_CAP,
    DEFAULT_MAX_QUEUE_WAIT,
    SLOW_HOST_CAP,
    SLOW_HOST_LATENCY,
    Backend,
    EndpointLimiter,
    Limits,
    RuleEntry,
)
from actionrt.limits.memory import MemoryBackend
from actionrt.limits.rules import (
    CappingRule,
    ThrottlingRule,
    UrlPattern,
    parse_capping_rules,
    parse_throttling_rules,
)
from actionrt.limits.window import RECENT_CALLS, LatencyTracker, Pacer, SlidingWindow

if TYPE_CHECKING:
    from actionrt.limits.redis_backend import RedisBackend

__all__ = [
    "ADMITTED",
    "DEFAULT_CAP",
    "DEFAULT_MAX_QUEUE_WAIT",
    "LIMITS_UNAVAILABLE",
    "RECENT_CALLS",
    "SLOW_HOST_CAP",
    "SLOW_HOST_LATENCY",
    "Admission",
    "Backend",
    "CapSpec",
    "CappingRule",
    "EndpointLimiter",
    "Gate",
    "GateSpec",
    "LatencyTracker",
    "Limits",
    "LimitsUnavailableError",
    "MemoryBackend",
    "Pacer",
    "RedisBackend",
    "RuleEntry",
    "SlidingWindow",
    "ThrottleSpec",
    "ThrottlingRule",
    "UrlPattern",
    "parse_capping_rules",
    "parse_throttling_rules",
]


def __getattr__(name: str) -> object:
    # The Redis backend imports redis.asyncio: only load it for those who use it.
    if name == "RedisBackend":
        from actionrt.limits.redis_backend import RedisBackend

        return RedisBackend
    raise AttributeError(name)
