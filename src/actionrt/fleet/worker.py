"""`Worker`: one process of the fleet. Reads calls from the queue in batches, runs them on its
Runtime with full concurrency, stores the results and acknowledges them in grouped transactions.

It takes over the calls of workers that died (`claim_idle`), dead-letters a call delivered too
often, keeps throttled calls in Redis, follows action edits, and on `stop()` drains: it stops
taking calls, finishes those it holds, and returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from actionrt.auth.context import AuthContext
from actionrt.auth.tokens import TokenCache
from actionrt.errors import UnknownActionError
from actionrt.fleet.actions import ActionSet, LoadedActions, load_leniently
from actionrt.fleet.calls import QueuedCall, failed_result
from actionrt.fleet.catalog import ServiceCatalog, key_from_env
from actionrt.fleet.engine import Completion, Delivery
from actionrt.fleet.redis_streams import DEFAULT_RESULT_TTL, REDIS_OUTAGE, RedisStreams, connect, shown_url
from actionrt.fleet.throttle import DueCall, DurableThrottle
from actionrt.fleet.tokens import RedisTokenStore
from actionrt.guard import DestinationPolicy
from actionrt.limits import DEFAULT_MAX_QUEUE_WAIT, LIMITS_UNAVAILABLE, Limits
from actionrt.limits.admission import queue_too_long
from actionrt.limits.redis_backend import RedisBackend
from actionrt.observability import metrics_for
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.results import CAPPED, NOT_SENT, InvocationResult
from actionrt.runtime import Runtime
from actionrt.secrets import SecretResolver

__all__ = ["Worker", "WorkerConfig"]

log = logging.getLogger("actionrt.fleet")

_T = TypeVar("_T")
_READ_BLOCK: Final = 0.5  # seconds a read waits for calls; also how soon a stop is noticed
_PACE_HORIZON: Final = 0.05  # throttled calls due this soon are taken and timed locally
_PACE_IDLE: Final = 1.0  # with nothing filed, how often the throttling queue is looked at
DEFAULT_MAX_UNSENT_AGE: Final = 60.0
"""Seconds since a call was first queued during which a run that sent nothing requeues it."""
_CATALOG_CHECK: Final = 1.0  # how often a worker fed by the service checks the catalog's version


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What `actionrt worker` is given (see docs/fleet.md)."""

    paths: tuple[str, ...]
    redis_url: str
    queue: str = "default"
    concurrency: int = 256
    allow_private_network: bool = False
    capping: str | list[Mapping[str, Any]] | None = None
    throttling: str | list[Mapping[str, Any]] | None = None
    claim_idle: float = 30.0
    max_deliveries: int = 5
    batch: int = 128
    result_ttl: int = DEFAULT_RESULT_TTL
    limits_prefix: str = "actionrt:limits:"
    max_queue_wait: float = DEFAULT_MAX_QUEUE_WAIT
    watch: bool = True
    max_unsent_age: float = DEFAULT_MAX_UNSENT_AGE
    from_service: bool = False  # serve the service's published catalog instead of `paths`


class Worker:
    """One worker process's loops around a shared queue (see the module docstring)."""

    def __init__(self, config: WorkerConfig, *, consumer: str | None = None) -> None:
        self.config = config
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.engine = RedisStreams(config.redis_url, config.queue, result_ttl=config.result_ttl)
        self.keys = self.engine.keys
        self.tokens = RedisTokenStore(self.engine.client, prefix="actionrt:tokens:")
        self.catalog = (
            ServiceCatalog(self.engine.client, config.queue, key_from_env()) if config.from_service else None
        )
        self.plugins = Plugins.load(() if self.catalog is None else (self.catalog.plugin,))
        self.throttle = (
            DurableThrottle(self.engine.client, self.keys, config.throttling, max_wait=config.max_queue_wait)
            if config.throttling
            else None
        )
        self.actions: ActionSet | None = None
        self.metrics = metrics_for().fleet
        self.stopping = asyncio.Event()
        self._busy = 0
        self._freed = asyncio.Event()
        self._working: dict[bytes, str] = {}  # stream deliveries being worked on: ref -> call id
        self._leased: set[str] = set()  # throttled calls being worked on
        self._done: list[Completion] = []
        self._flushing = False
        self._flushed = asyncio.Event()
        self._pacer_wake = asyncio.Event()
        self._outage = False
        self._reload_lock = asyncio.Lock()
        self._watching = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- building the runtime ---------------------------------------------------------------

    def _runtime(self, registry: Registry) -> Runtime:
        config = self.config
        policy = DestinationPolicy(config.allow_private_network)
        auth = AuthContext(
            SecretResolver(self.plugins.secret_providers),
            allow_private_network=config.allow_private_network,
            policy=policy,
            tokens=TokenCache(store=self.tokens),
        )
        # Capping counts live in Redis, shared by the fleet; throttling is the fleet's own
        # (durable) queue, so the runtime gets only the capping rules.
        limits = Limits(
            config.capping or (),
            (),
            backend=RedisBackend(client=connect(config.redis_url, 32), prefix=config.limits_prefix),
            max_queue_wait=config.max_queue_wait,
        )
        return Runtime(registry, policy=policy, limits=limits, auth_context=auth)

    def load(self) -> LoadedActions:
        """Load the actions (blocking file reads); broken files are reported and left out."""
        return load_leniently(
            self.config.paths,
            self.plugins,
            allow_private_network=self.config.allow_private_network,
            build=self._runtime,
        )

    async def _load(self) -> LoadedActions | None:
        """A new generation: from the files, or from the service's catalog (None: the catalog
        has not changed since it was last loaded)."""
        if self.catalog is None:
            return await asyncio.to_thread(self.load)
        snapshot = await self._redis(self.catalog.read)
        if self.actions is not None and snapshot.version in (0, self.catalog.version):
            if not snapshot.version:  # the Redis lost it: keep what is served until republished
                log.warning("the service's catalog is gone from Redis: still serving the last one read")
            return None
        if not snapshot.version:
            log.warning(
                "no catalog published on queue %r yet: start `actionrt serve --redis`", self.config.queue
            )
        return await asyncio.to_thread(
            self.catalog.load,
            snapshot,
            self.plugins,
            allow_private_network=self.config.allow_private_network,
            build=self._runtime,
        )

    async def observe(self) -> None:
        """The queue's depth for `/metrics`: calls in the stream (waiting or being worked on)
        plus calls waiting in the durable throttling queue. Left as it was when Redis is out."""
        try:
            depth = await self.engine.depth()
        except REDIS_OUTAGE:  # QueueUnavailableError is a ConnectionError
            return
        self.metrics.set_queue_depth(self.config.queue, depth.waiting)

    @property
    def ready(self) -> bool:
        """Actions loaded and Redis reachable at the last try."""
        return self.actions is not None and not self._outage and not self.stopping.is_set()

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stop()`, then drain: every call taken gets its result stored."""
        watchers: list[Callable[[], Awaitable[None]]] = []
        if self.config.watch:
            watchers = [self._watch_signal]
            watchers += [self._watch_catalog] if self.catalog is not None else [self._watch_files]
        runners = [asyncio.create_task(self._guarded(loop)) for loop in watchers]
        if watchers:  # watching before loading: an edit made meanwhile is never missed
            await (self._subscribed if self.catalog is not None else self._watching).wait()
        generation = await self._load()
        assert generation is not None  # nothing loaded yet: always a generation
        await generation.runtime.open()
        self.actions = ActionSet(generation)
        await self._redis(self.engine.prepare)
        log.info(
            "worker %s serving %d action(s) from queue %r on %s",
            self.consumer,
            len(generation.runtime.actions),
            self.config.queue,
            shown_url(self.config.redis_url),
        )
        loops: list[Callable[[], Awaitable[None]]] = [self._read_loop, self._claim_loop]
        if self.throttle is not None and self.throttle.active:
            loops.append(self._pace_loop)
        runners += [asyncio.create_task(self._guarded(loop)) for loop in loops]
        try:
            await self.stopping.wait()
            log.info("worker %s draining: %d call(s) to finish", self.consumer, self._busy)
            await self._drain()
            log.info("worker %s drained", self.consumer)
        finally:
            for runner in runners:
                runner.cancel()
            await asyncio.gather(*runners, return_exceptions=True)
            await self.actions.aclose()
            await self.engine.aclose()

    async def _guarded(self, make: Callable[[], Awaitable[None]]) -> None:
        """Run one of the worker's loops; a bug in it is logged and the loop started again."""
        while not self.stopping.is_set():
            try:
                await make()
            except Exception:
                log.exception("worker loop %s failed; starting it again", getattr(make, "__name__", make))
                await asyncio.sleep(1.0)  # not a synchronisation: a crash loop must not spin

    def stop(self) -> None:
        """Stop taking calls; `run` returns once the calls held are finished and stored."""
        self.stopping.set()
        self._pacer_wake.set()

    async def _drain(self) -> None:
        while self._busy or self._done or self._flushing:
            self._freed.clear()
            await self._freed.wait()

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Redis outages: retried with backoff, one log line each -----------------------------

    async def _redis(self, operation: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(REDIS_OUTAGE),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            before_sleep=self._outage_seen,
            reraise=True,
        ):
            with attempt:
                result = await operation(*args)
        if self._outage:
            self._outage = False
            log.info("Redis at %s is back", shown_url(self.config.redis_url))
        return result

    def _outage_seen(self, state: RetryCallState) -> None:
        if not self._outage:
            self._outage = True
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "Redis at %s is unreachable (%s); retrying with backoff",
                shown_url(self.config.redis_url),
                error,
            )

    # -- taking calls -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        config = self.config
        while not self.stopping.is_set():
            free = config.concurrency - self._busy
            if free <= 0:
                self._freed.clear()
                await self._freed.wait()
                continue
            deliveries = await self._redis(
                self.engine.read, self.consumer, min(free, config.batch), _READ_BLOCK
            )
            for delivery in deliveries:
                self._take(delivery)

    def _take(self, delivery: Delivery) -> None:
        self._busy += 1
        try:
            call = QueuedCall.decode(delivery.raw)
        except ValueError as exc:
            self._spawn(self._dead_letter(delivery, None, f"not a queued call: {exc}"))
            return
        self._working[delivery.ref] = call.call_id
        self._spawn(self._serve(call, delivery))

    async def _claim_loop(self) -> None:
        """Keep our own deliveries alive, take over those of dead workers, dead-letter calls
        delivered too often."""
        config = self.config
        interval = max(config.claim_idle / 3, 0.05)
        while not self.stopping.is_set():
            await self._redis(self.engine.keep, self.consumer, list(self._working))
            if self.throttle is not None and self._leased:
                await self._redis(self.throttle.keep, list(self._leased), config.claim_idle)
            free = config.concurrency - self._busy
            if free > 0:
                claimed = await self._redis(self.engine.claim, self.consumer, config.claim_idle, free)
                if claimed:
                    self.metrics.claimed(config.queue, len(claimed))
                    await self._claimed(claimed)
            try:
                async with asyncio.timeout(interval):
                    await self.stopping.wait()
            except TimeoutError:
                pass

    async def _claimed(self, deliveries: Sequence[Delivery]) -> None:
        ids = [_call_id(d) for d in deliveries]
        finished = await self._redis(self.engine.finished, [i or "" for i in ids])
        done = [d.ref for d, f in zip(deliveries, finished, strict=True) if f]
        if done:  # the worker that died had stored the result, not yet acknowledged it
            await self._redis(self.engine.acknowledge, done)
        for delivery, call_id, was_finished in zip(deliveries, ids, finished, strict=True):
            if was_finished:
                continue
            if delivery.deliveries > self.config.max_deliveries:
                self._busy += 1
                reason = (
                    f"dead-lettered after {delivery.deliveries - 1} deliveries: the workers "
                    "running it stopped before it finished"
                )
                self._spawn(self._dead_letter(delivery, call_id, reason))
            else:
                log.info("took over call %s (delivery %d)", call_id, delivery.deliveries)
                self._take(delivery)

    async def _dead_letter(self, delivery: Delivery, call_id: str | None, reason: str) -> None:
        try:
            action = QueuedCall.decode(delivery.raw).action
        except ValueError:
            action = ""
        log.error("call %s to %r: %s", call_id, action, reason)
        try:
            result = failed_result(action, reason, code="deadLettered")
            await self._redis(self.engine.dead_letter, delivery, reason, result)
            self.metrics.dead_lettered(self.config.queue)
        finally:
            self._release()

    # -- running calls ----------------------------------------------------------------------

    async def _serve(self, call: QueuedCall, delivery: Delivery) -> None:
        assert self.actions is not None
        generation = self.actions.enter()
        try:
            result = await self._invoke(generation, call, delivery)
        except Exception:  # never leave a call without a result
            log.exception("call %s failed unexpectedly", call.call_id)
            result = failed_result(call.action, "the worker failed unexpectedly", code="unexpected")
        finally:
            await self.actions.leave(generation)
        if result is None:  # filed in the throttling queue; its delivery is acknowledged
            self._working.pop(delivery.ref, None)
            self._release()
            return
        if resendable(result) and await self._requeued(call, delivery, result):
            return
        self._complete(Completion(delivery.ref, call.call_id, result))

    async def _requeued(self, call: QueuedCall, delivery: Delivery, result: InvocationResult) -> bool:
        """Put a call that sent nothing back in the queue (a new entry: no delivery counted),
        unless it is older than `max_unsent_age`: then False, and its result is final."""
        again = await self._redis(self.engine.requeue, self.consumer, delivery, self.config.max_unsent_age)
        if again is False:
            return False
        self._working.pop(delivery.ref, None)
        self._release()
        if again:
            log.info("call %s to %r requeued: %s", call.call_id, call.action, result.error)
        return True

    async def _invoke(
        self, generation: LoadedActions, call: QueuedCall, delivery: Delivery | None
    ) -> InvocationResult | None:
        broken = generation.broken.get(call.action)
        if broken is not None:
            return failed_result(call.action, broken, code="actionNotLoaded")
        runtime = generation.runtime
        throttle = self.throttle
        if delivery is not None and throttle is not None and throttle.active:
            pace = _pace(throttle, runtime, call)
            if pace is not None:
                filed, wait = await self._redis(throttle.enqueue, delivery, call.call_id, pace)
                if not filed:
                    reason = queue_too_long(wait, throttle.max_wait).reason
                    return failed_result(
                        call.action, reason, code="capped", error_class="capping", status=CAPPED
                    )
                self._pacer_wake.set()
                return None
        while True:
            try:
                result = await runtime.invoke(
                    call.action,
                    call.params,
                    headers=call.headers,
                    query=call.query,
                    path=call.path,
                    timeout=call.timeout,
                    idempotency_key=call.call_id,
                )
            except UnknownActionError as exc:
                return failed_result(call.action, str(exc), code="unknownAction")
            if not _stopped_by_redis(result):
                return result
            # The shared limits could not be reached, so nothing was sent: once Redis answers
            # again the call runs again, rather than ending in an error an outage caused.
            await self._redis(self.engine.client.ping)

    # -- throttled calls ----------------------------------------------------------------------

    async def _pace_loop(self) -> None:
        throttle = self.throttle
        assert throttle is not None
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            free = self.config.concurrency - self._busy
            if free <= 0:  # every slot is taken: wait for one
                self._freed.clear()
                await self._freed.wait()
                continue
            self._pacer_wake.clear()
            due, following = await self._redis(throttle.take, free, _PACE_HORIZON, self.config.claim_idle)
            for item in due:
                self._busy += 1
                self._leased.add(item.call_id)
                loop.call_later(item.delay, self._spawn, self._serve_due(item))
            if len(due) == free:
                continue
            pause = _PACE_IDLE if following is None else min(max(following, 0.001), _PACE_IDLE)
            try:
                async with asyncio.timeout(pause):
                    await self._pacer_wake.wait()
            except TimeoutError:
                pass

    async def _serve_due(self, due: DueCall) -> None:
        assert self.actions is not None
        try:
            call = QueuedCall.decode(due.raw)
        except ValueError as exc:
            result = failed_result("", f"not a queued call: {exc}")
            self._complete(Completion(None, due.call_id, result))
            return
        generation = self.actions.enter()
        try:
            found = await self._invoke(generation, call, None)
            assert found is not None
            result = found
        except Exception:
            log.exception("call %s failed unexpectedly", call.call_id)
            result = failed_result(call.action, "the worker failed unexpectedly", code="unexpected")
        finally:
            await self.actions.leave(generation)
        waited = due.queued + due.delay
        result = dataclasses.replace(
            result, queued_seconds=result.queued_seconds + waited, elapsed=result.elapsed + waited
        )
        self._complete(Completion(None, call.call_id, result))

    # -- storing results: one transaction per batch -------------------------------------------

    def _complete(self, completion: Completion) -> None:
        self._done.append(completion)
        if not self._flushing:
            self._flushing = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._done:
                batch, self._done = self._done, []
                await self._redis(self.engine.complete, batch)
                for completion in batch:
                    if completion.ref is not None:
                        self._working.pop(completion.ref, None)
                    else:
                        self._leased.discard(completion.call_id)
                    self._release()
        finally:
            self._flushing = False
            self._freed.set()

    def _release(self) -> None:
        self._busy -= 1
        self._freed.set()

    # -- edits --------------------------------------------------------------------------------

    async def reload(self, *, announce: bool) -> None:
        """Load the actions again and serve the new definitions; calls already running finish
        on the old ones. With `announce`, tell the other workers to reload too."""
        if self.actions is None:  # the first load is under way: it reads the edit
            return
        async with self._reload_lock:
            generation = await self._load()
            if generation is None:
                return
            await self.actions.swap(generation)
            log.info(
                "actions reloaded: %d serving, %d broken%s",
                len(generation.runtime.actions),
                len(generation.broken),
                "" if self.catalog is None else f" (the service's catalog, version {self.catalog.version})",
            )
        if announce:
            await self._redis(self.engine.client.publish, self.keys.changed, self.consumer)

    async def _watch_files(self) -> None:
        from watchfiles import awatch

        paths = [p for p in self.config.paths if Path(p).exists()]
        # `yield_on_timeout`: the first (empty) answer says the watcher is in place.
        async for changes in awatch(
            *paths, stop_event=self.stopping, debounce=100, step=20, yield_on_timeout=True, rust_timeout=200
        ):
            self._watching.set()
            if not changes or self.actions is None:
                continue
            try:
                await self.reload(announce=True)
            except Exception as exc:  # a path that vanished: keep serving what is loaded
                log.error("reload failed, still serving the previous actions: %s", exc)

    async def _watch_signal(self) -> None:
        """Reload when another worker (or the service) announces an edit."""
        while not self.stopping.is_set():
            pubsub = self.engine.client.pubsub()
            try:
                await pubsub.subscribe(self.keys.changed)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if (
                        message["type"] in (b"message", "message")
                        and message["data"] != self.consumer.encode()
                    ):
                        try:
                            await self.reload(announce=False)
                        except Exception as exc:
                            log.error("reload failed, still serving the previous actions: %s", exc)
            except REDIS_OUTAGE:
                await asyncio.sleep(1.0)  # reconnection backoff
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _watch_catalog(self) -> None:
        """Pub/sub delivers at most once (a message sent while the subscription was cut is
        lost): the catalog's version is also looked at every second."""
        assert self.catalog is not None
        while not self.stopping.is_set():
            try:
                async with asyncio.timeout(_CATALOG_CHECK):
                    await self.stopping.wait()
            except TimeoutError:
                pass
            if self.actions is None or self.stopping.is_set():
                continue
            version = await self._redis(self.engine.client.get, self.catalog.keys.version)
            if version is not None and int(version) != self.catalog.version:
                try:
                    await self.reload(announce=False)
                except Exception as exc:
                    log.error("reload failed, still serving the previous actions: %s", exc)


def _stopped_by_redis(result: InvocationResult) -> bool:
    """A call the runtime stopped, before sending anything, because the shared limits (Redis)
    could not be reached. (Every other Redis failure under a call is handled where it happens:
    the token store falls back to a local fetch.)"""
    return not result.sent and result.error_code == LIMITS_UNAVAILABLE


def resendable(result: InvocationResult) -> bool:
    """A call that ran out of time before anything was sent (it waited for a connection, a
    throttling departure or a token): running it again cannot repeat a request. An unexpected
    failure is never one: it cannot tell whether something was sent."""
    return not result.sent and result.error_code == NOT_SENT


def _call_id(delivery: Delivery) -> str | None:
    try:
        return QueuedCall.decode(delivery.raw).call_id
    except ValueError:
        return None


def _pace(throttle: DurableThrottle, runtime: Runtime, call: QueuedCall) -> Any:
    action = runtime.registry.actions.get(call.action)
    if action is None:
        return None
    endpoint = action.definition.endpoint
    url = endpoint.url
    if endpoint.dynamicPath and isinstance(call.path, str):
        url = url.rstrip("/") + "/" + call.path.lstrip("/")
    return throttle.pace(endpoint.method, url)


def worker_paths(paths: Iterable[str | Path]) -> tuple[str, ...]:
    return tuple(str(p) for p in paths)
