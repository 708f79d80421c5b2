"""`Queue`: submit calls to the fleet and read their results (contract §5).

Submits made in one event-loop tick go to Redis in one pipeline; `result(..., wait=)` waits on
one shared pub/sub subscription, so thousands of waiting callers cost no polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from actionrt.errors import ActionrtError, UnknownActionError
from actionrt.fleet.calls import QueuedCall, call_id_for_key, new_call_id
from actionrt.fleet.engine import QueueDepth, QueueEngine, QueueUnavailableError
from actionrt.fleet.redis_streams import DEFAULT_RESULT_TTL, RedisStreams
from actionrt.guard import DestinationPolicy
from actionrt.prepare import CallBuilder, InputError
from actionrt.registry import Registry
from actionrt.results import InvocationResult
from actionrt.runtime import MAX_TIMEOUT, MIN_TIMEOUT
from actionrt.secrets import SecretResolver

__all__ = ["DEFAULT_QUEUE", "CallRefusedError", "Queue", "QueueUnavailableError"]

DEFAULT_QUEUE = "default"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


class CallRefusedError(ActionrtError, ValueError):
    """A submitted call `invoke` would answer with an input `internalError`: nothing was queued.
    The message is the one `invoke` would give (`customer.points: expected an integer, ...`)."""

    def __init__(self, action: str, message: str) -> None:
        self.action = action
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

    `actions` (a path, several, or a loaded `Registry`; `allow_private_network` as for
    `Runtime.from_path`) lets `submit` refuse an unknown action or
    bad input with the messages `invoke` gives, before anything is queued; without it calls are
    queued unchecked and the workers report such problems in the result.
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS,
        *,
        name: str = DEFAULT_QUEUE,
        actions: str | Path | Iterable[str | Path] | Registry | None = None,
        allow_private_network: bool | None = None,
        result_ttl: int = DEFAULT_RESULT_TTL,
        engine: QueueEngine | None = None,
    ) -> None:
        self.name = name
        self.engine: QueueEngine = (
            engine if engine is not None else RedisStreams(url, name, result_ttl=result_ttl)
        )
        self._builders: dict[str, CallBuilder] | None = None
        if actions is not None:
            registry = (
                actions
                if isinstance(actions, Registry)
                else Registry.from_path(
                    actions,
                    allow_private_network=DestinationPolicy(allow_private_network).allow_private_network,
                )
            )
            self._builders = _builders(registry)
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
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
            raise CallRefusedError(action, "idempotency_key: must be a non-empty string")
        if self._builders is not None:
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
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((call, idempotency_key is not None, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future
        return call_id

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

    async def depth(self) -> QueueDepth:
        """How full the queue is now: calls waiting (or being worked on, or throttled) and dead
        letters. `QueueUnavailableError` when Redis cannot be reached."""
        return await self.engine.depth()

    def _check(
        self,
        action: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        path: str | None,
        timeout: float | None,
    ) -> None:
        assert self._builders is not None
        builder = self._builders.get(action)
        if builder is None:
            raise UnknownActionError(action, list(self._builders))
        try:
            builder.build(params, headers, query, path)
        except InputError as exc:
            raise CallRefusedError(action, str(exc)) from None
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT
        ):
            raise CallRefusedError(action, "timeout: must be between 1 and 30 seconds")


def _builders(registry: Registry) -> dict[str, CallBuilder]:
    names = {"env", *registry.plugins.secret_providers}
    secrets = SecretResolver(dict.fromkeys(names, _AnySecret()))
    return {name: CallBuilder(action, secrets) for name, action in registry.actions.items()}
