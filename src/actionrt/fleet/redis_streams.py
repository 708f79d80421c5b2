"""The Redis Streams engine: calls in a stream read by a consumer group, results in keys with a
TTL, waiters woken by one pub/sub message per batch of results.

Every key of a queue shares the hash tag `{queue}`, so a queue lives in one Redis Cluster slot
and the multi-key steps (store a result and acknowledge its delivery) are single transactions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from actionrt.fleet.calls import QueuedCall, decode_result, encode_result
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

# A keyed call is queued once: the claim key says its call id was taken (for the result TTL).
_SUBMIT_KEYED = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[1], '*', 'c', ARGV[1])
  return 1
end
return 0
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
        self._submit_keyed = self.client.register_script(_SUBMIT_KEYED)
        self._waiters: dict[str, list[asyncio.Future[InvocationResult]]] = {}
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
            async with self.client.pipeline(transaction=False) as pipe:
                for call, keyed in calls:
                    if keyed:
                        await self._submit_keyed(
                            keys=[keys.stream, keys.claim(call.call_id)],
                            args=[call.encode(), self.result_ttl],
                            client=pipe,
                        )
                    else:
                        pipe.xadd(keys.stream, {b"c": call.encode()})
                replies = await pipe.execute()
        except REDIS_OUTAGE as exc:
            raise self.unavailable(exc) from None
        return [reply == 1 if keyed else True for reply, (_, keyed) in zip(replies, calls, strict=True)]

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

    async def wait(self, call_id: str, timeout: float) -> InvocationResult | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[InvocationResult] = loop.create_future()
        waiters = self._waiters.setdefault(call_id, [])
        waiters.append(future)
        try:
            if self._listener is None or self._listener.done():
                self._subscribed.clear()
                self._listener = asyncio.create_task(self._listen(), name="actionrt-results")
            async with asyncio.timeout(timeout):
                # Subscribed before looking: a result stored after the look is announced to us.
                await self._subscribed.wait()
                self._look(call_id)
                return await future
        except TimeoutError:
            return None
        finally:
            waiters.remove(future)
            if not waiters:
                self._waiters.pop(call_id, None)

    def _look(self, call_id: str) -> None:
        """Look for the result of `call_id` among those stored: the looks of one event-loop
        tick share one MGET."""
        self._looks.append(call_id)
        if len(self._looks) == 1:
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
            finished: dict[str, str] = json.loads(data)
        except ValueError:
            return
        for call_id, raw in finished.items():
            for future in self._waiters.get(call_id, ()):
                if not future.done():
                    future.set_result(decode_result(raw))

    async def _recheck(self) -> None:
        waiting = list(self._waiters)
        if waiting:
            found: list[Any] = await self.client.mget([self.keys.result(c) for c in waiting])
            self._announce_found(waiting, found)

    def _announce_found(self, call_ids: Sequence[str], found: Sequence[bytes | None]) -> None:
        for call_id, raw in zip(call_ids, found, strict=True):
            if raw is not None:
                for future in self._waiters.get(call_id, ()):
                    if not future.done():
                        future.set_result(decode_result(raw))

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
            out += [Delivery(ref, fields.get(b"c", b"")) for ref, fields in entries if fields]
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
            Delivery(ref, fields.get(b"c", b""), int(info[0]["times_delivered"]) if info else 1)
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
        announced: dict[str, str] = {}
        refs: list[bytes] = []
        async with self.client.pipeline(transaction=True) as pipe:
            for completion in completions:
                raw = encode_result(completion.result)
                pipe.set(keys.result(completion.call_id), raw, nx=True, ex=self.result_ttl)
                announced[completion.call_id] = raw
                if completion.ref is not None:
                    refs.append(completion.ref)
                else:
                    pipe.zrem(keys.throttled, completion.call_id)
                    pipe.hdel(keys.throttled_calls, completion.call_id)
            if refs:
                pipe.xack(keys.stream, GROUP, *refs)
                pipe.xdel(keys.stream, *refs)
            pipe.publish(keys.done, json.dumps(announced, separators=(",", ":")))
            await pipe.execute()

    async def dead_letter(self, delivery: Delivery, reason: str, result: InvocationResult) -> None:
        keys = self.keys
        raw = encode_result(result)
        call_id = result_call_id(delivery)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.dead, {b"c": delivery.raw, b"reason": reason.encode()})
            if call_id is not None:
                pipe.set(keys.result(call_id), raw, nx=True, ex=self.result_ttl)
                pipe.publish(keys.done, json.dumps({call_id: raw}))
            pipe.xack(keys.stream, GROUP, delivery.ref)
            pipe.xdel(keys.stream, delivery.ref)
            await pipe.execute()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self.client.aclose()


def result_call_id(delivery: Delivery) -> str | None:
    try:
        return QueuedCall.decode(delivery.raw).call_id
    except ValueError:
        return None
