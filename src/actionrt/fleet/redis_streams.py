"""The Redis Streams engine: calls in a stream read by a consumer group, results in keys with a
TTL, waiters woken by one pub/sub message per batch of results.

Every key of a queue shares the hash tag `{queue}`, so a queue lives in one Redis Cluster slot
and the multi-key steps (store a result and acknowledge its delivery) are single transactions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from actionrt.fleet.calls import QueuedCall, decode_announcement, decode_result, encode_result
from actionrt.fleet.engine import Completion, Delivery, QueueDepth, QueueUnavailableError
from actionrt.results import InvocationResult

__all__ = [
    "DEFAULT_RESULT_TTL",
    "GROUP",
    "REDIS_OUTAGE",
    "QueueKeys",
    "RedisStreams",
    "connect",
    "shown_url",
]

log = logging.getLogger("actionrt.fleet")

DEFAULT_RESULT_TTL: Final = 24 * 3600
GROUP: Final = b"workers"
REDIS_OUTAGE: Final = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
"""What a Redis outage raises (redis-py's errors, and the OS's under them)."""
_CHUNK: Final = 1000  # calls per script call: Redis runs one script at a time

# A batch of submits in one script call: ARGV[1] the TTL of the idempotency claims, then a
# (flag, call) pair per call; a keyed call (flag '1') takes the next claim key of KEYS[2..] and is
# queued only when its claim is new. One reply per call: 1 queued, 0 already queued.
_SUBMIT = """
local queued = {}
local claim = 2
for i = 2, #ARGV, 2 do
  local fresh = 1
  if ARGV[i] == '1' then
    if not redis.call('SET', KEYS[claim], '1', 'NX', 'EX', ARGV[1]) then
      fresh = 0
    end
    claim = claim + 1
  end
  if fresh == 1 then
    redis.call('XADD', KEYS[1], '*', 'c', ARGV[i + 1])
  end
  queued[#queued + 1] = fresh
end
return queued
"""

# A batch of results in one script call: each stored unless one is already (the first stored
# wins, and is the one announced), its delivery acknowledged and removed (or, for a throttled
# call, its entry in the throttling queue removed), and one message announcing them all.
# KEYS: stream, throttled (zset), throttled calls (hash), then the result keys; ARGV: TTL,
# group, channel, then per result: call id, result, delivery ('' for a throttled call).
_COMPLETE = """
local announced = {}
local refs = {}
for i = 4, #KEYS do
  local a = 4 + (i - 4) * 3
  local call_id, result, ref = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if not redis.call('SET', KEYS[i], result, 'NX', 'EX', ARGV[1]) then
    result = redis.call('GET', KEYS[i]) or result
  end
  announced[#announced + 1] = cjson.encode(call_id) .. ':' .. result
  if ref == '' then
    redis.call('ZREM', KEYS[2], call_id)
    redis.call('HDEL', KEYS[3], call_id)
  else
    refs[#refs + 1] = ref
  end
end
for i = 1, #refs, 1000 do
  local chunk = {unpack(refs, i, math.min(i + 999, #refs))}
  redis.call('XACK', KEYS[1], ARGV[2], unpack(chunk))
  redis.call('XDEL', KEYS[1], unpack(chunk))
end
redis.call('PUBLISH', ARGV[3], '{' .. table.concat(announced, ',') .. '}')
return #announced
"""


# A call that sent nothing goes back to the queue as a new entry carrying when it was first
# queued ('t', ms on Redis's clock), unless it is older than the bound (0) or its delivery is no
# longer this consumer's (-1: the worker that took it over stores its result).
_REQUEUE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 then
  return -1
end
local now = redis.call('TIME')
local age = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
if age > tonumber(ARGV[6]) then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'c', ARGV[4], 't', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"""


def shown_url(url: str) -> str:
    """A Redis URL as messages show it: without its user and password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def connect(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client for `url` (hiredis parses replies). A blocking pool: past `max_connections`,
    commands wait for a connection instead of opening more (the Redis is shared). A command
    that meets a connection broken by an outage is retried on a new one (a few times, briefly:
    longer outages are the caller's to ride out)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(0.5, 0.02), 4),
    )
    return aioredis.Redis(connection_pool=pool)


class QueueKeys:
    """The names of one queue's keys, all in the queue's hash slot."""

    def __init__(self, queue: str) -> None:
        base = f"actionrt:{{{queue}}}:"
        self.base = base
        self.stream = base + "calls"
        self.dead = base + "dead"
        self.done = base + "done"  # the pub/sub channel of finished calls
        self.changed = base + "actions-changed"  # the pub/sub channel of action edits
        self.throttled = base + "throttled"
        self.throttled_calls = base + "throttled:calls"

    def result(self, call_id: str) -> str:
        return f"{self.base}result:{call_id}"

    def claim(self, call_id: str) -> str:
        return f"{self.base}call:{call_id}"

    def pace(self, rule_uid: str) -> str:
        return f"{self.base}pace:{rule_uid}"


class RedisStreams:
    """`QueueEngine` on Redis Streams (see `actionrt.fleet.engine`)."""

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        result_ttl: int = DEFAULT_RESULT_TTL,
        client: aioredis.Redis | None = None,
    ) -> None:
        self.url = url
        self.queue = queue
        self.keys = QueueKeys(queue)
        self.result_ttl = result_ttl
        self.client: aioredis.Redis = client if client is not None else connect(url)
        self._submit = self.client.register_script(_SUBMIT)
        self._complete = self.client.register_script(_COMPLETE)
        self._requeue = self.client.register_script(_REQUEUE)
        self._waiters: dict[str, list[_Waiting]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._looks: list[str] = []
        self._claim_cursor = "0-0"

    def unavailable(self, exc: BaseException) -> QueueUnavailableError:
        return QueueUnavailableError(f"Redis at {shown_url(self.url)} is unreachable ({exc})")

    # -- the submitting side ----------------------------------------------------------------

    async def submit(self, calls: Sequence[tuple[QueuedCall, bool]]) -> list[bool]:
        keys = self.keys
        try:
            # Script calls of at most _CHUNK calls (none holds Redis long), in one round trip.
            async with self.client.pipeline(transaction=False) as pipe:
                for start in range(0, len(calls), _CHUNK):
                    chunk = calls[start : start + _CHUNK]
                    claims = [keys.claim(call.call_id) for call, keyed in chunk if keyed]
                    args: list[Any] = [self.result_ttl]
                    for call, keyed in chunk:
                        args += (b"1" if keyed else b"", call.encode())
                    await self._submit(keys=[keys.stream, *claims], args=args, client=pipe)
                replies: list[list[int]] = await pipe.execute()
        except REDIS_OUTAGE as exc:
            raise self.unavailable(exc) from None
        return [n == 1 for queued in replies for n in queued]

    async def result(self, call_id: str) -> InvocationResult | None:
        try:
            raw = await self.client.get(self.keys.result(call_id))
        except REDIS_OUTAGE as exc:
            raise self.unavailable(exc) from None
        return decode_result(raw) if raw is not None else None

    async def depth(self) -> QueueDepth:
        keys = self.keys
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xlen(keys.stream)  # acknowledged calls are deleted: waiting or being worked on
                pipe.zcard(keys.throttled)
                pipe.xlen(keys.dead)
                stream, throttled, dead = await pipe.execute()
        except REDIS_OUTAGE as exc:
            raise self.unavailable(exc) from None
        return QueueDepth(self.queue, int(stream) + int(throttled), int(dead))

    async def submitted(self, call_id: str) -> bool:
        try:
            return bool(await self.client.exists(self.keys.claim(call_id)))
        except REDIS_OUTAGE as exc:
            raise self.unavailable(exc) from None

    async def wait(self, call_id: str, timeout: float) -> InvocationResult | None:
        return (await self.wait_many([call_id], timeout))[0]

    async def wait_many(self, call_ids: Sequence[str], timeout: float) -> list[InvocationResult | None]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(loop, call_ids)
        for call_id in waiting.found:
            self._waiters.setdefault(call_id, []).append(waiting)
        # One future and one timer for the batch, not an `asyncio.timeout` scope per call.
        expiry = loop.call_later(timeout, waiting.expire)
        try:
            if self._listener is None or self._listener.done():
                self._subscribed.clear()
                self._listener = asyncio.create_task(self._listen(), name="actionrt-results")
            if self._subscribed.is_set():
                # Subscribed before looking: a result stored after the look is announced to us.
                # (Until subscribed, the listener looks for every waiter once it is.)
                self._look(waiting.found)
            await waiting.future
        finally:
            expiry.cancel()
            for call_id in waiting.found:
                waiters = self._waiters.get(call_id)
                if waiters is not None:
                    waiters.remove(waiting)
                    if not waiters:
                        del self._waiters[call_id]
        return [waiting.found[call_id] for call_id in call_ids]

    def _look(self, call_ids: Iterable[str]) -> None:
        """Look for the results of `call_ids` among those stored: the looks of one event-loop
        tick share one MGET."""
        first = not self._looks
        self._looks.extend(call_ids)
        if first:
            asyncio.get_running_loop().create_task(self._look_all())

    async def _look_all(self) -> None:
        await asyncio.sleep(0)  # let the other waiters of this tick add their call ids
        looks, self._looks = self._looks, []
        try:
            found: list[Any] = await self.client.mget([self.keys.result(c) for c in looks])
        except REDIS_OUTAGE:
            return  # the listener resubscribes and looks again once Redis is back
        self._announce_found(looks, found)

    async def _listen(self) -> None:
        """Wake the waiters of each announced result; resubscribe after an outage (and look
        for the results announced meanwhile)."""
        delay = 0.05
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=False)
            try:
                await pubsub.subscribe(self.keys.done)
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == b"subscribe" or kind == "subscribe":
                        delay = 0.05
                        self._subscribed.set()
                        await self._recheck()
                    elif kind in (b"message", "message"):
                        self._announce(message["data"])
            except REDIS_OUTAGE:
                self._subscribed.clear()
                await asyncio.sleep(delay)  # a reconnection backoff, not a synchronisation
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _announce(self, data: bytes) -> None:
        try:
            finished = decode_announcement(data)
        except ValueError:
            return
        waiters = self._waiters
        for call_id, result in finished.items():
            for waiting in waiters.get(call_id, ()):
                waiting.deliver(call_id, result)

    async def _recheck(self) -> None:
        waiting = list(self._waiters)
        if waiting:
            found: list[Any] = await self.client.mget([self.keys.result(c) for c in waiting])
            self._announce_found(waiting, found)

    def _announce_found(self, call_ids: Sequence[str], found: Sequence[bytes | None]) -> None:
        for call_id, raw in zip(call_ids, found, strict=True):
            if raw is not None:
                result = decode_result(raw)
                for waiting in self._waiters.get(call_id, ()):
                    waiting.deliver(call_id, result)

    # -- the working side -------------------------------------------------------------------

    async def prepare(self) -> None:
        try:
            await self.client.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]:
        reply: Any = await self.client.xreadgroup(
            GROUP.decode(), consumer, {self.keys.stream: ">"}, count=count, block=max(1, int(block * 1000))
        )
        out: list[Delivery] = []
        for _, entries in reply or ():
            out += [_delivery(ref, fields) for ref, fields in entries if fields]
        return out

    async def claim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        stream = self.keys.stream
        reply: Any = await self.client.xautoclaim(
            stream, GROUP, consumer, min_idle_time=int(idle * 1000), start_id=self._claim_cursor, count=count
        )
        cursor, entries = reply[0], reply[1]
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        entries = [(ref, fields) for ref, fields in entries if fields]
        if not entries:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for ref, _ in entries:
                pipe.xpending_range(stream, GROUP, min=ref, max=ref, count=1, consumername=consumer)
            pending = await pipe.execute()
        return [
            _delivery(ref, fields, int(info[0]["times_delivered"]) if info else 1)
            for (ref, fields), info in zip(entries, pending, strict=True)
        ]

    async def keep(self, consumer: str, refs: Sequence[bytes]) -> None:
        if refs:
            await self.client.xclaim(self.keys.stream, GROUP, consumer, 0, list(refs), justid=True)

    async def finished(self, call_ids: Sequence[str]) -> list[bool]:
        async with self.client.pipeline(transaction=False) as pipe:
            for call_id in call_ids:
                pipe.exists(self.keys.result(call_id))
            return [bool(n) for n in await pipe.execute()]

    async def acknowledge(self, refs: Sequence[bytes]) -> None:
        if refs:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xack(self.keys.stream, GROUP, *refs)
                pipe.xdel(self.keys.stream, *refs)
                await pipe.execute()

    async def complete(self, completions: Sequence[Completion]) -> None:
        keys = self.keys
        args: list[Any] = [self.result_ttl, GROUP, keys.done]
        for completion in completions:
            args += (completion.call_id, encode_result(completion.result), completion.ref or b"")
        await self._complete(
            keys=[
                keys.stream,
                keys.throttled,
                keys.throttled_calls,
                *(keys.result(c.call_id) for c in completions),
            ],
            args=args,
        )

    async def requeue(self, consumer: str, delivery: Delivery, max_age: float) -> bool | None:
        queued = delivery.queued_ms if delivery.queued_ms is not None else entry_ms(delivery.ref)
        reply = await self._requeue(
            keys=[self.keys.stream],
            args=[GROUP, consumer, delivery.ref, delivery.raw, queued, int(max_age * 1000)],
        )
        return None if reply == -1 else reply == 1

    async def dead_letter(self, delivery: Delivery, reason: str, result: InvocationResult) -> None:
        keys = self.keys
        raw = encode_result(result)
        call_id = result_call_id(delivery)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.dead, {b"c": delivery.raw, b"reason": reason.encode()})
            if call_id is not None:
                pipe.set(keys.result(call_id), raw, nx=True, ex=self.result_ttl)
                pipe.publish(keys.done, b'{"%s":%s}' % (call_id.encode(), raw))
            pipe.xack(keys.stream, GROUP, delivery.ref)
            pipe.xdel(keys.stream, delivery.ref)
            await pipe.execute()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self.client.aclose()


class _Waiting:
    """A caller waiting for the results of some calls: its future is done when every one of
    them has its result (`found`), or when it expires (the others stay None)."""

    __slots__ = ("found", "future", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop, call_ids: Iterable[str]) -> None:
        self.found: dict[str, InvocationResult | None] = dict.fromkeys(call_ids)
        self.left = len(self.found)
        self.future: asyncio.Future[None] = loop.create_future()
        if not self.left:
            self.future.set_result(None)

    def deliver(self, call_id: str, result: InvocationResult) -> None:
        if self.found.get(call_id, result) is None:
            self.found[call_id] = result
            self.left -= 1
            if not self.left and not self.future.done():
                self.future.set_result(None)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


def entry_ms(ref: bytes) -> int:
    """When a stream entry was added (ms, Redis's clock): the first part of its id."""
    return int(ref.partition(b"-")[0])


def _delivery(ref: bytes, fields: dict[bytes, bytes], deliveries: int = 1) -> Delivery:
    queued = fields.get(b"t")
    return Delivery(ref, fields.get(b"c", b""), deliveries, int(queued) if queued is not None else None)


def result_call_id(delivery: Delivery) -> str | None:
    try:
        return QueuedCall.decode(delivery.raw).call_id
    except ValueError:
        return None
