"""Durable throttling: calls matched by a throttling rule wait in Redis, not in a worker's memory.

A call's delivery is acknowledged in the same script that files it in a sorted set under its
due time; due times are paced `1 / maxThroughput` apart per rule, in arrival order, on Redis's
clock. Workers take due calls under a lease: a worker that dies leaves its calls to the others
once the lease runs out, and restarting every worker loses none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from actionrt.fleet.engine import Delivery
from actionrt.fleet.redis_streams import GROUP, QueueKeys
from actionrt.limits import DEFAULT_MAX_QUEUE_WAIT, Limits, ThrottlingRule

__all__ = ["DueCall", "DurableThrottle", "Pace"]

_MICROS: Final = 1_000_000

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(x) return string.format('%.0f', x) end
"""

# KEYS: throttled set, its calls, the stream, then one pace key per rule.
# ARGV: group, entry id, call id, queued call, longest wait (µs), then one interval (µs) per rule.
# {0, wait µs} when filed (and the delivery acknowledged); {-1, wait µs} when the wait is too long.
_ENQUEUE = (
    _PRELUDE
    + """
local due = now
for i = 4, #KEYS do
  local last = redis.call('GET', KEYS[i])
  if last then
    local nxt = tonumber(last) + tonumber(ARGV[i + 2])
    if nxt > due then due = nxt end
  end
end
local wait = due - now
if wait > tonumber(ARGV[5]) then return {-1, num(wait)} end
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  for i = 4, #KEYS do
    redis.call('SET', KEYS[i], num(due), 'PX', math.ceil(wait / 1000) + 60000)
  end
  redis.call('HSET', KEYS[2], ARGV[3], num(now) .. ':' .. ARGV[4])
  redis.call('ZADD', KEYS[1], num(due), ARGV[3])
end
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
return {0, num(wait)}
"""
)

# KEYS: throttled set, its calls. ARGV: horizon (µs), lease (µs), most calls to take.
# {now, next due or -1, then per call taken: id, due, filed-at:queued call}
_TAKE = (
    _PRELUDE
    + """
local lease = tonumber(ARGV[2])
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(now + tonumber(ARGV[1])),
                         'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {num(now), '-1'}
for i = 1, #found, 2 do
  local id, due = found[i], tonumber(found[i + 1])
  local call = redis.call('HGET', KEYS[2], id)
  if call then
    redis.call('ZADD', KEYS[1], num(math.max(now, due) + lease), id)
    table.insert(out, id)
    table.insert(out, num(due))
    table.insert(out, call)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first > 0 then out[2] = first[2] end
return out
"""
)

# KEYS: throttled set. ARGV: lease (µs), then the ids still being worked on.
_KEEP = (
    _PRELUDE
    + """
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', num(now + tonumber(ARGV[1])), ARGV[i])
end
return #ARGV - 1
"""
)


@dataclass(frozen=True, slots=True)
class Pace:
    """The throttling rules one endpoint's calls obey: (pace key, interval µs) per rule."""

    keys: tuple[str, ...]
    intervals: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class DueCall:
    """A throttled call taken to be sent: due in `delay` s; it has waited `queued` s so far."""

    call_id: str
    raw: bytes
    delay: float
    queued: float


class DurableThrottle:
    """The throttling queue of one fleet queue, shared by its workers through Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: QueueKeys,
        rules: Iterable[ThrottlingRule | Mapping[str, Any]] | str,
        *,
        max_wait: float = DEFAULT_MAX_QUEUE_WAIT,
    ) -> None:
        self._keys = keys
        self._matcher = Limits((), rules)  # the limits module's rule matching, nothing more
        self.active = bool(self._matcher.rules(deployed=True))
        self.max_wait = max_wait
        self._enqueue = client.register_script(_ENQUEUE)
        self._take = client.register_script(_TAKE)
        self._keep = client.register_script(_KEEP)
        self._paces: dict[tuple[str, str], Pace | None] = {}

    def pace(self, method: str, url: str) -> Pace | None:
        """The throttling rules a call to `url` obeys (None: it is not throttled)."""
        key = (method, url)
        if key not in self._paces:
            if len(self._paces) > 4096:
                self._paces.clear()
            rules = [r for r in self._matcher.matching(method, url) if isinstance(r, ThrottlingRule)]
            self._paces[key] = (
                Pace(
                    tuple(self._keys.pace(r.uid) for r in rules),
                    tuple(round(_MICROS / r.max_throughput) for r in rules),
                    ", ".join(f"{r.label!r} ({r.max_throughput} calls/s)" for r in rules),
                )
                if rules
                else None
            )
        return self._paces[key]

    async def enqueue(self, delivery: Delivery, call_id: str, pace: Pace) -> tuple[bool, float]:
        """File the call under its due time and acknowledge its delivery, atomically: (True,
        wait in s), or (False, wait) when the wait would exceed the longest (nothing filed)."""
        keys = self._keys
        status, wait = await self._enqueue(
            keys=[keys.throttled, keys.throttled_calls, keys.stream, *pace.keys],
            args=[
                GROUP,
                delivery.ref,
                call_id,
                delivery.raw,
                round(self.max_wait * _MICROS),
                *pace.intervals,
            ],
        )
        return int(status) >= 0, int(wait) / _MICROS

    async def take(self, limit: int, horizon: float, lease: float) -> tuple[list[DueCall], float | None]:
        """Lease the calls due within `horizon` s (at most `limit`), and the delay in seconds
        until the next filed call is due (None when none is)."""
        keys = self._keys
        reply: Sequence[bytes] = await self._take(
            keys=[keys.throttled, keys.throttled_calls],
            args=[round(horizon * _MICROS), round(lease * _MICROS), limit],
        )
        now = int(reply[0])
        following = int(reply[1])
        taken = []
        for index in range(2, len(reply), 3):
            filed_at, _, raw = reply[index + 2].partition(b":")
            due = int(reply[index + 1])
            taken.append(
                DueCall(
                    reply[index].decode(),
                    raw,
                    max(due - now, 0) / _MICROS,
                    max(now - int(filed_at), 0) / _MICROS,
                )
            )
        return taken, (max(following - now, 0) / _MICROS if following >= 0 else None)

    async def keep(self, call_ids: Sequence[str], lease: float) -> None:
        """Extend the leases of throttled calls still being worked on."""
        if call_ids:
            await self._keep(keys=[self._keys.throttled], args=[round(lease * _MICROS), *call_ids])
