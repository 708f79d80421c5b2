"""The Redis backend: caps and throttling queues shared by every process using one Redis.

Each decision is one Lua script (atomic), on Redis's own clock (`TIME`, or a clock the backend
is given: tests), over sorted sets of
call times (µs) and pacer hashes that expire on their own. Keys live under a prefix; use one
per tenant. Every script call is bounded by `timeout`: a Redis that is down or hung makes calls
fail fast (`LimitsUnavailableError`) with one warning per outage, and a background reconnect
loop lets them flow again as soon as it answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from actionrt.limits.admission import (
    ADMITTED,
    Admission,
    CapSpec,
    GateSpec,
    LimitsUnavailableError,
    ThrottleSpec,
    queue_too_long,
)
from actionrt.limits.connections import RedisConnectionGate

log = logging.getLogger("actionrt.limits")

__all__ = ["DEFAULT_REDIS_URL", "RedisBackend", "RedisGate"]

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_TIMEOUT: Final = 0.5
"""Seconds a decision may take, waiting for a pool connection included: half the shortest call
timeout (1 s), so a hung Redis never holds a call past its deadline, even on a busy loop."""

# What "Redis is not answering" looks like; anything else (a script error) is a bug, not an outage.
_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)

# Numbers reach Redis commands through string.format("%.0f"): Lua's own tostring would print
# 1.7e+15 and lose the microseconds.
# The last ARGV is the time in µs from the backend's clock, or -1 for Redis's own.
_PRELUDE = """
local now = tonumber(ARGV[#ARGV])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function num(x) return string.format('%.0f', x) end
"""

# The admissions of one event-loop tick, in one script: each is checked, then recorded, in
# order, so every decision sees the ones before it (caps stay exact).
# KEYS: every request's windows, one after the other (a key may repeat: the host key with the
# slow-host limit). ARGV[1]: the number of requests; then per request: its member, its number
# of windows, and per window: limit, period (µs), record (1/0).
# Returns, per request, 0 when admitted (and recorded) or the index of the refusing window,
# then Redis's time (µs).
_TAKE = (
    _PRELUDE
    + """
local out = {}
local k, a = 0, 2
for r = 1, tonumber(ARGV[1]) do
  local member, nkeys = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local refused = 0
  for i = 1, nkeys do
    local j = a + 3 * (i - 1)
    local limit, period = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
    if redis.call('ZCOUNT', KEYS[k + i], '(' .. num(now - period), '+inf') >= limit then
      refused = i
      break
    end
  end
  if refused == 0 then
    for i = 1, nkeys do
      local j = a + 3 * (i - 1)
      if ARGV[j + 2] == '1' then
        local period = tonumber(ARGV[j + 1])
        redis.call('ZREMRANGEBYSCORE', KEYS[k + i], '-inf', num(now - period))
        redis.call('ZADD', KEYS[k + i], num(now), member .. ':' .. i)
        redis.call('PEXPIRE', KEYS[k + i], math.ceil(period / 1000) + 1000)
      end
    end
  end
  out[#out + 1] = refused
  out[#out + 1] = num(now)
  k = k + nkeys
  a = a + 3 * nkeys
end
return out
"""
)

# KEYS: the cap windows (checked, not recorded), then the throttling pacers (hashes).
# ARGV[1]: member, ARGV[2]: number of cap windows, ARGV[3]: longest wait (µs);
# then per key: limit (rate), period (µs).
# Returns {0, wait µs} when a departure was reserved, {i, 0} when cap window i refuses now,
# {-1, wait µs} when the wait would exceed the longest allowed.
# A pacer holds the start of its busy run (a, µs) and the departures booked since (n): the next
# may leave at a + n * period / rate, so departures are evenly spaced, never a burst.
_RESERVE = (
    _PRELUDE
    + """
local ncaps = tonumber(ARGV[2])
for i = 1, ncaps do
  local limit = tonumber(ARGV[2 * i + 2])
  local period = tonumber(ARGV[2 * i + 3])
  if redis.call('ZCOUNT', KEYS[i], '(' .. num(now - period), '+inf') >= limit then
    return {i, 0}
  end
end
local departure = now
local pacers = {}
for i = ncaps + 1, #KEYS do
  local rate = tonumber(ARGV[2 * i + 2])
  local period = tonumber(ARGV[2 * i + 3])
  local pace = redis.call('HMGET', KEYS[i], 'a', 'n')
  local a, n = tonumber(pace[1]), tonumber(pace[2])
  local free = -1
  if a and n then free = a + math.ceil(n * period / rate) end
  pacers[i] = {a, n, free}
  if free > departure then departure = free end
end
local wait = departure - now
if wait > tonumber(ARGV[3]) then
  return {-1, num(wait)}
end
for i = ncaps + 1, #KEYS do
  local period = tonumber(ARGV[2 * i + 3])
  local p = pacers[i]
  if departure > p[3] then
    redis.call('HSET', KEYS[i], 'a', num(departure), 'n', 1)
  else
    redis.call('HSET', KEYS[i], 'a', num(p[1]), 'n', p[2] + 1)
  end
  redis.call('PEXPIRE', KEYS[i], math.ceil((wait + period) / 1000) + 1000)
end
return {0, num(wait)}
"""
)

_MICROS: Final = 1_000_000


class RedisBackend:
    """Counters in Redis, shared by every process that uses the same URL and prefix.

    Each attempt costs one round trip (two when throttled: reserve, then take), each bounded by
    `timeout` seconds (socket reads, connecting, and waiting for one of the `max_connections`
    pooled connections). When Redis does not answer in time, the call is not admitted: it ends
    `internalError` with error code `limitsUnavailable`; until a background ping (backing off
    up to `max_reconnect_wait` s) gets an answer, calls fail at once instead of waiting too.
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        prefix: str = "actionrt:limits:",
        max_connections: int = 32,
        client: aioredis.Redis | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_reconnect_wait: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` (seconds) replaces Redis's `TIME` in the decisions: for tests only, since
        every process sharing the counters must read the same clock."""
        self.prefix = prefix
        self._clock = clock
        self.timeout = timeout
        self.max_reconnect_wait = max_reconnect_wait
        self.where = _where(url)
        if client is None:
            # A blocking pool: past `max_connections` decisions wait for a connection (at most
            # `timeout`) instead of failing, so thousands of concurrent calls share a few
            # connections. No retries inside redis-py: the deadline is ours to keep.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
            client = aioredis.Redis(connection_pool=pool)
        self.client: aioredis.Redis = client
        self._take = self.client.register_script(_TAKE)
        self._reserve = self.client.register_script(_RESERVE)
        # Members must be unique across processes: a random token per backend and a counter.
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._counter = itertools.count()
        self._batch: list[tuple[list[str], list[Any], asyncio.Future[tuple[int, int]]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._outage: asyncio.Task[None] | None = None
        self._outage_reason = ""
        self.available = asyncio.Event()
        """Set while Redis answers; cleared during an outage (tests and health checks wait on it)."""
        self.available.set()

    def gate(self, spec: GateSpec) -> RedisGate:
        return RedisGate(self, spec)

    def connection_gate(self, key: str, limit: int) -> RedisConnectionGate:
        """A `maxHttpConnections` gate shared by every process on this Redis and prefix."""
        return RedisConnectionGate(self, key, limit)

    def script(self, source: str) -> AsyncScript:
        """A Lua script run by `run`, with `now` (µs) and `num` of the prelude defined."""
        return self.client.register_script(_PRELUDE + source)

    def outage_reason(self) -> str | None:
        """Why calls fail at once while Redis is not answering; None when it answers."""
        return self._outage_reason if self._outage is not None else None

    def member(self) -> str:
        return f"{self._token}:{next(self._counter)}"

    async def take(self, keys: list[str], args: list[Any]) -> tuple[int, int]:
        """(0 if admitted else the 1-based refusing window, Redis time µs). The takes of one
        event-loop tick go to Redis together, in one script call: one round trip and one
        command's client work for all of them."""
        if self._outage is not None:
            raise LimitsUnavailableError(self._outage_reason)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._batch.append((keys, args, answer))
        if len(self._batch) == 1:
            loop.call_soon(self._send_batch)  # once every take of this tick has joined
        return await answer

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._take_batch(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _take_batch(
        self, batch: list[tuple[list[str], list[Any], asyncio.Future[tuple[int, int]]]]
    ) -> None:
        keys: list[str] = []
        args: list[Any] = [len(batch)]
        for request_keys, request_args, _ in batch:
            keys += request_keys
            args += [self.member(), len(request_keys), *request_args]
        try:
            answers = await self.run(self._take, keys, args)
        except Exception as exc:  # unavailable, or a bug: every caller of the batch gets it
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(
                        LimitsUnavailableError(str(exc)) if isinstance(exc, LimitsUnavailableError) else exc
                    )
            return
        for index, (_, _, answer) in enumerate(batch):
            if not answer.done():  # (a caller cancelled meanwhile: its slot stays taken)
                answer.set_result((int(answers[2 * index]), int(answers[2 * index + 1])))

    async def reserve(self, keys: list[str], args: list[Any]) -> tuple[int, float]:
        """Run the reserve script: (status, wait in seconds)."""
        status, wait = await self.run(self._reserve, keys, [self.member(), *args])
        return int(status), int(wait) / _MICROS

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        if self._outage is not None:
            raise LimitsUnavailableError(self._outage_reason)
        try:
            async with asyncio.timeout(self.timeout):
                return await script(keys=keys, args=[*args, self._now()])
        except _UNAVAILABLE as exc:
            raise LimitsUnavailableError(self._lost(exc)) from None

    def _now(self) -> int:
        return -1 if self._clock is None else _micros(self._clock())

    def _lost(self, exc: BaseException) -> str:
        """Start an outage (once): one warning, then a reconnect loop in the background."""
        if self._outage is None:
            what = f"no answer within {self.timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
            self._outage_reason = f"the limits store (Redis at {self.where}) is unavailable: {what}"
            log.warning(
                "%s; calls end internalError (limitsUnavailable) until it answers again",
                self._outage_reason,
            )
            self.available.clear()
            self._outage = asyncio.get_running_loop().create_task(self._reconnect(time.monotonic()))
        return self._outage_reason

    async def _reconnect(self, since: float) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.05, max=self.max_reconnect_wait, jitter=0.05),
            retry=retry_if_exception_type(_UNAVAILABLE),
        )
        async for attempt in retrying:
            with attempt:
                async with asyncio.timeout(self.timeout):
                    await self.client.ping()
        log.info(
            "the limits store (Redis at %s) answers again after %.1f s", self.where, time.monotonic() - since
        )
        self._outage = None
        self.available.set()

    async def aclose(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        await self.client.aclose()


def _where(url: str) -> str:
    """The URL's host, port and database, never its password."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path or "localhost"
    return f"{host}:{parts.port or 6379}{parts.path if parts.hostname else ''}"


def _micros(seconds: float) -> int:
    return round(seconds * _MICROS)


class RedisGate:
    """One endpoint's keys and script arguments, built once."""

    __slots__ = (
        "_backend",
        "_caps",
        "_latency",
        "_max_wait",
        "_reasons",
        "_reserve_args",
        "_reserve_keys",
        "_sleep",
        "_slow",
        "_take_args",
        "_take_keys",
        "_throttles",
    )

    def __init__(self, backend: RedisBackend, spec: GateSpec) -> None:
        prefix = backend.prefix
        self._backend = backend
        self._latency = spec.latency
        self._caps: tuple[CapSpec, ...] = (spec.host, *spec.caps)
        self._throttles: tuple[ThrottleSpec, ...] = spec.throttles
        self._max_wait = spec.max_queue_wait
        self._sleep = spec.sleep or asyncio.sleep
        self._reasons = (spec.host.reason, *(c.reason for c in spec.caps), spec.slow_host.reason)
        self._take_keys = [prefix + c.key for c in self._caps]
        self._take_args: list[Any] = []
        for cap in self._caps:
            self._take_args += [cap.limit, _micros(cap.period), 1]
        # The slow-host check: the host's key again, its own limit and period, nothing recorded.
        self._slow: tuple[str, list[Any]] = (
            prefix + spec.slow_host.key,
            [spec.slow_host.limit, _micros(spec.slow_host.period), 0],
        )
        self._reserve_keys = self._take_keys + [prefix + t.key + ":pace" for t in self._throttles]
        self._reserve_args = [len(self._caps), _micros(spec.max_queue_wait)]
        for cap in self._caps:
            self._reserve_args += [cap.limit, _micros(cap.period)]
        for throttle in self._throttles:
            self._reserve_args += [throttle.rate, _micros(throttle.period)]

    def _take_call(self) -> tuple[list[str], list[Any]]:
        if self._latency.slow:
            key, args = self._slow
            return [*self._take_keys, key], [*self._take_args, *args]
        return self._take_keys, self._take_args

    def _refusal(self, index: int, queued: float) -> Admission:
        return Admission(True, queued, self._reasons[min(index, len(self._reasons)) - 1])

    def admit_now(self) -> None:
        """Never at once: the counts are in Redis."""
        return None

    async def admit(self) -> Admission:
        wait = 0.0
        if self._throttles:
            status, wait = await self._backend.reserve(self._reserve_keys, self._reserve_args)
            if status < 0:
                return queue_too_long(wait, self._max_wait)
            if status > 0:
                return self._refusal(status, 0.0)
            if wait > 0:
                await self._sleep(wait)
        keys, args = self._take_call()
        refused, _ = await self._backend.take(keys, args)
        if refused:
            return self._refusal(refused, wait)
        return Admission(False, wait) if wait > 0 else ADMITTED
