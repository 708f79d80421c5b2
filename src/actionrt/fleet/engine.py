"""The queue engine interface: what `Queue` and the worker ask of the system that carries calls.

Redis Streams implement it (`actionrt.fleet.redis_streams`); docs/fleet.md says how NATS
JetStream or Kafka would. Everything is batched: one round trip serves many calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from actionrt.errors import ActionrtError
from actionrt.fleet.calls import QueuedCall
from actionrt.results import InvocationResult

__all__ = ["Completion", "Delivery", "QueueDepth", "QueueEngine", "QueueUnavailableError"]


class QueueUnavailableError(ActionrtError, ConnectionError):
    """The queue's server cannot be reached: nothing was submitted."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a call to this worker: `ref` acknowledges it, `deliveries` counts them."""

    ref: bytes
    raw: bytes
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Completion:
    """A call's result, ready to be stored and its delivery acknowledged (`ref` None: a
    throttled call, whose delivery was acknowledged when it entered the throttling queue)."""

    ref: bytes | None
    call_id: str
    result: InvocationResult


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How full one queue is: `waiting` calls (queued, being worked on, or held in the durable
    throttling queue) and `dead` letters (calls given up)."""

    queue: str
    waiting: int
    dead: int


class QueueEngine(Protocol):
    """What the fleet needs from a queue engine."""

    # -- the submitting side ----------------------------------------------------------------
    async def submit(self, calls: Sequence[tuple[QueuedCall, bool]]) -> list[bool]:
        """Queue each call; a keyed one (flag True) only when its call id was never queued.
        True per call queued now. `QueueUnavailableError` when the server is unreachable."""
        ...

    async def result(self, call_id: str) -> InvocationResult | None: ...

    async def depth(self) -> QueueDepth:
        """The queue's depth now (one round trip). `QueueUnavailableError` when unreachable."""
        ...

    async def wait(self, call_id: str, timeout: float) -> InvocationResult | None:
        """The result once stored, waiting up to `timeout` s for it, without polling."""
        ...

    # -- the working side -------------------------------------------------------------------
    async def prepare(self) -> None:
        """Create the consumer group (idempotent)."""
        ...

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]: ...

    async def claim(self, consumer: str, idle: float, count: int) -> list[Delivery]:
        """Take over deliveries left unacknowledged for `idle` s by a worker that died."""
        ...

    async def keep(self, consumer: str, refs: Sequence[bytes]) -> None:
        """Tell the others these deliveries are still being worked on (resets their idle time)."""
        ...

    async def finished(self, call_ids: Sequence[str]) -> list[bool]:
        """Whether each call already has a result (a redelivery then only acknowledges)."""
        ...

    async def acknowledge(self, refs: Sequence[bytes]) -> None:
        """Acknowledge deliveries of calls that already have their result."""
        ...

    async def complete(self, completions: Sequence[Completion]) -> None:
        """Store each result (the first one stored wins), acknowledge, notify the waiters."""
        ...

    async def dead_letter(self, delivery: Delivery, reason: str, result: InvocationResult) -> None:
        """Move a delivery to the dead-letter stream with `reason`, and store its result."""
        ...

    async def aclose(self) -> None: ...
