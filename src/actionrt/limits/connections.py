"""`maxHttpConnections` gates: at most a capping rule's number of requests in flight at once.

In memory (one process) a gate is an `asyncio.Semaphore`. With the Redis backend the slots are
shared by every process on the same Redis and prefix, so a fleet of workers holds the limit at
the endpoint, not the limit per worker:

- A slot is a lease: a member of a sorted set scored by its expiry (Redis time). Taking removes
  the expired leases, then adds ours while fewer than the limit are held (one Lua script, atomic);
  giving back removes it. A process that dies holding slots frees them when their leases expire
  (`LEASE_SECONDS`, longer than the longest call: an attempt never outlives its call's deadline).
- One pump per gate and process takes slots for all of its waiting calls in one script call, in
  arrival order. While the rule is full it asks again after a short pause that backs off from
  `MIN_POLL` to `MAX_POLL` seconds, and at once when a slot of its own process is given back;
  so a slot freed by another process is noticed within `MAX_POLL`, and a full rule costs each
  process at most 1 / `MIN_POLL` small script calls per second, however many calls wait.
- Redis not answering makes the waiting calls fail with `LimitsUnavailableError` (the call ends
  `limitsUnavailable`, as for capping); a give-back that fails is left to the lease's expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol

from actionrt.limits.admission import LimitsUnavailableError

if TYPE_CHECKING:
    from actionrt.limits.redis_backend import RedisBackend

__all__ = ["LEASE_SECONDS", "MAX_POLL", "MIN_POLL", "ConnectionGate", "RedisConnectionGate"]

log = logging.getLogger("actionrt.limits")

LEASE_SECONDS: Final = 35.0
"""How long a slot is held at most: the longest call timeout (30 s) and a margin."""
MIN_POLL: Final = 0.005
MAX_POLL: Final = 0.05


class ConnectionGate(Protocol):
    """Holds one of a rule's `maxHttpConnections` slots between `acquire` and `release`."""

    async def acquire(self) -> Any: ...

    def release(self) -> None: ...


# KEYS[1]: the rule's leases. ARGV[1]: the limit; ARGV[2]: the lease (µs); ARGV[3..]: one
# member per waiting call, then the time (the backend's prelude). Returns how many of the
# members (in order) now hold a slot.
_ACQUIRE: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now))
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local wanted = #ARGV - 3
local granted = math.max(0, math.min(free, wanted))
local expiry = num(now + tonumber(ARGV[2]))
for i = 1, granted do
  redis.call('ZADD', KEYS[1], expiry, ARGV[2 + i])
end
if granted > 0 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000) + 1000)
end
return granted
"""


class RedisConnectionGate:
    """One rule's slots in Redis, for the calls of this process (see the module's docstring)."""

    def __init__(self, backend: RedisBackend, key: str, limit: int, *, lease: float = LEASE_SECONDS) -> None:
        self._backend = backend
        self._key = backend.prefix + key
        self._limit = limit
        self._lease = round(lease * 1_000_000)
        self._script = backend.script(_ACQUIRE)
        self._waiters: deque[asyncio.Future[str]] = deque()
        self._held: list[str] = []
        self._returning: list[str] = []
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._given_back = asyncio.Event()

    async def acquire(self) -> bool:
        """Wait for a slot (the caller's deadline bounds the wait)."""
        backend_down = self._backend.outage_reason()
        if backend_down is not None:
            raise LimitsUnavailableError(backend_down)
        slot: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        if self._pump is None or self._pump.done():
            self._pump = self._start(self._pump_slots())
        try:
            member = await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._give_back(slot.result())  # granted just as the caller gave up
            raise
        self._held.append(member)
        return True

    def release(self) -> None:
        self._give_back(self._held.pop())

    async def _pump_slots(self) -> None:
        pause = MIN_POLL
        while True:
            waiting = [slot for slot in self._waiters if not slot.done()]
            self._waiters = deque(waiting)
            if not waiting:
                return
            members = [self._backend.member() for _ in waiting]
            self._given_back.clear()
            try:
                granted = int(
                    await self._backend.run(self._script, [self._key], [self._limit, self._lease, *members])
                )
            except LimitsUnavailableError as exc:
                for slot in waiting:
                    if not slot.done():
                        slot.set_exception(LimitsUnavailableError(str(exc)))
                continue
            for slot, member in zip(waiting[:granted], members, strict=False):
                self._waiters.popleft()
                if slot.done():  # its caller gave up meanwhile
                    self._give_back(member)
                else:
                    slot.set_result(member)
            if granted == len(waiting):
                pause = MIN_POLL
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._given_back.wait()
                    pause = MIN_POLL
                    continue
            pause = min(pause * 2, MAX_POLL)

    def _give_back(self, member: str) -> None:
        """Free a slot: the give-backs of one event-loop tick go to Redis in one command."""
        self._returning.append(member)
        if len(self._returning) == 1:
            asyncio.get_running_loop().call_soon(self._send_give_backs)

    def _send_give_backs(self) -> None:
        members, self._returning = self._returning, []
        self._start(self._remove(members))

    async def _remove(self, members: list[str]) -> None:
        try:
            async with asyncio.timeout(self._backend.timeout):
                await self._backend.client.zrem(self._key, *members)
        except Exception as exc:
            log.debug("slots of %s not given back (%s): their leases expire", self._key, exc)
        self._given_back.set()

    def _start(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
