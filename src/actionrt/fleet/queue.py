"""`Queue`: submit calls to the fleet and read their results (contract §5).

Submits made in one event-loop tick go to Redis in one pipeline; `result(..., wait=)` waits on
one shared pub/sub subscription, so thousands of waiting callers cost no polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from actionrt.definition import Action
from actionrt.errors import ActionrtError, UnknownActionError
from actionrt.fleet.calls import QueuedCall, call_id_for_key, new_call_id
from actionrt.fleet.engine import QueueDepth, QueueEngine, QueueUnavailableError
from actionrt.fleet.redis_streams import DEFAULT_RESULT_TTL, RedisStreams
from actionrt.guard import DestinationPolicy
from actionrt.prepare import CallBuilder, InputError
from actionrt.registry import Registry
from actionrt.results import InvocationResult
from actionrt.runtime import call_timeout
from actionrt.secrets import SecretResolver

__all__ = ["DEFAULT_QUEUE", "CallRefusedError", "Queue", "QueueUnavailableError"]

DEFAULT_QUEUE = "default"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


class CallRefusedError(ActionrtError, ValueError):
    """A submitted call `invoke` would answer with an input `internalError`: nothing was queued.
    The message is the one `invoke` would give (`customer.points: expected an integer, ...`)."""

    def __init__(self, action: str, message: str, field: str = "") -> None:
        self.action = action
        self.field = field  # the wrong value's place (`customer.points`, `timeout`), "" if none
        super().__init__(message)


class _AnySecret:
    """Stands in for every secret while a submitted call is checked: the submitting side needs
    the action definitions, not the credentials."""

    name = "placeholder"
    checkable = False

    def get(self, name: str) -> str:
        return "placeholder"


class Queue:
    """The call queue shared by a fleet of `actionrt worker` processes.

    `actions` (a path, several, a loaded `Registry`, or a function giving the current one, as a
    service whose actions change; `allow_private_network` as for `Runtime.from_path`) lets
    `submit` refuse an unknown action or bad input with the messages `invoke` gives, before
    anything is queued; without it calls are queued unchecked and the workers report such
    problems in the result.
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS,
        *,
        name: str = DEFAULT_QUEUE,
        actions: str | Path | Iterable[str | Path] | Registry | Callable[[], Registry] | None = None,
        allow_private_network: bool | None = None,
        result_ttl: int = DEFAULT_RESULT_TTL,
        engine: QueueEngine | None = None,
    ) -> None:
        self.name = name
        self.engine: QueueEngine = (
            engine if engine is not None else RedisStreams(url, name, result_ttl=result_ttl)
        )
        self._actions: Callable[[], Registry] | None = None
        self._builders: dict[str, tuple[Action, CallBuilder]] = {}
        if isinstance(actions, Registry):
            self._actions = lambda: actions
        elif callable(actions):
            self._actions = actions
        elif actions is not None:
            loaded = Registry.from_path(
                actions, allow_private_network=DestinationPolicy(allow_private_network).allow_private_network
            )
            self._actions = lambda: loaded
        self._pending: list[tuple[QueuedCall, bool, asyncio.Future[bool]]] = []
        self._flushing = False

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.engine.aclose()

    async def submit(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Queue one call; its call id. With `idempotency_key`, the key's call is queued at most
        once (within the result TTL): a second submit returns the same call id.

        Raises `UnknownActionError` / `CallRefusedError` (with `actions` given) before anything
        is queued, and `QueueUnavailableError` when Redis cannot be reached.
        """
        call, keyed = self._call(action, params, headers, query, path, idempotency_key, timeout)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((call, keyed, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future
        return call.call_id

    async def submit_many(
        self,
        action: str,
        params: Iterable[Mapping[str, Any] | None],
        *,
        idempotency_keys: Iterable[str] | None = None,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        timeout: float | None = None,
    ) -> list[str]:
        """Queue one call of `action` per item of `params` (a journey node's customers), in
        one round trip; their call ids, in order. `idempotency_keys`, when given, has one key
        per call. All or nothing: a call `submit` would refuse refuses the batch, the message
        naming its index (`calls[3]: customer.points: ...`)."""
        calls = list(params)
        keys: list[str | None] = (
            list(idempotency_keys) if idempotency_keys is not None else [None] * len(calls)
        )
        if len(keys) != len(calls):
            raise CallRefusedError(
                action, f"idempotency_keys: {len(keys)} keys for {len(calls)} calls (one per call)"
            )
        batch: list[tuple[QueuedCall, bool]] = []
        for index, (each, key) in enumerate(zip(calls, keys, strict=True)):
            try:
                batch.append(self._call(action, each, headers, query, path, key, timeout))
            except CallRefusedError as exc:
                raise CallRefusedError(action, f"calls[{index}]: {exc}") from None
        if batch:
            await self.engine.submit(batch)
        return [call.call_id for call, _ in batch]

    def _call(
        self,
        action: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        path: str | None,
        idempotency_key: str | None,
        timeout: float | None,
    ) -> tuple[QueuedCall, bool]:
        """The call to queue (checked, with `actions`), and whether it is keyed."""
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
            raise CallRefusedError(action, "idempotency_key: must be a non-empty string")
        if self._actions is not None:
            self._check(action, params, headers, query, path, timeout)
        call_id = call_id_for_key(idempotency_key) if idempotency_key is not None else new_call_id()
        call = QueuedCall(
            call_id,
            action,
            dict(params) if params is not None else None,
            dict(headers) if headers is not None else None,
            dict(query) if query is not None else None,
            path,
            timeout,
        )
        return call, idempotency_key is not None

    async def _flush(self) -> None:
        # Runs once the submits of this tick have queued themselves: one pipeline for all.
        batch, self._pending = self._pending, []
        self._flushing = False
        try:
            queued = await self.engine.submit([(call, keyed) for call, keyed, _ in batch])
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), fresh in zip(batch, queued, strict=True):
            if not future.done():
                future.set_result(fresh)

    async def result(self, call_id: str, wait: float | None = None) -> InvocationResult | None:
        """The call's result, or None when it is not done (after waiting up to `wait` s).

        Waiting costs no polling: one subscription per `Queue` announces stored results."""
        if not wait or wait <= 0:
            return await self.engine.result(call_id)
        return await self.engine.wait(call_id, wait)

    async def results(self, call_ids: Sequence[str], wait: float) -> list[InvocationResult | None]:
        """The results of `call_ids`, in order, once all are done or after `wait` s (None for
        those not done then): one waiter for the lot, however many they are."""
        return await self.engine.wait_many(call_ids, wait)

    async def depth(self) -> QueueDepth:
        """How full the queue is now: calls waiting (or being worked on, or throttled) and dead
        letters. `QueueUnavailableError` when Redis cannot be reached."""
        return await self.engine.depth()

    async def submitted(self, call_id: str) -> bool:
        """Whether a call with this id was submitted with an idempotency key (within the result
        TTL): a call id never seen is unknown, not pending. Calls without a key aren't recorded."""
        return await self.engine.submitted(call_id)

    def _check(
        self,
        action: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        path: str | None,
        timeout: float | None,
    ) -> None:
        assert self._actions is not None
        registry = self._actions()
        found = registry.actions.get(action)
        if found is None:
            raise UnknownActionError(action, list(registry.actions))
        built = self._builders.get(action)
        if built is None or built[0] is not found:  # compiled once per definition
            built = self._builders[action] = (found, _builder(registry, found))
        try:
            built[1].build(params, headers, query, path)
            if timeout is not None:
                call_timeout(timeout)  # refused as invoke refuses it
        except InputError as exc:
            raise CallRefusedError(action, str(exc), exc.field) from None


def _builder(registry: Registry, action: Action) -> CallBuilder:
    names = {"env", *registry.plugins.secret_providers}
    return CallBuilder(action, SecretResolver(dict.fromkeys(names, _AnySecret())))
