"""The service's catalog in Redis: `actionrt serve --redis` publishes its actions there, and
`actionrt worker --from-service` serves them, so an action saved in the console reaches every
worker (docs/fleet.md, "Console-fed workers").

A snapshot is three keys of the queue, written in one transaction: the action documents as the
store keeps them (secrets as `{{ secrets.console:ID }}` references only), the console secrets
they reference still sealed with the service's key, and a version. The transaction ends with a
message on the queue's `changed` channel; each worker then reads the snapshot, builds a new
generation of actions and swaps it in, while calls already running finish on the old one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cryptography.fernet import Fernet
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from actionrt.errors import ValidationError
from actionrt.fleet.actions import LoadedActions
from actionrt.fleet.redis_streams import REDIS_OUTAGE, QueueKeys, connect, shown_url
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.runtime import Runtime
from actionrt.service.vault import (
    KEY_ENV,
    ConsoleSecrets,
    ConsoleSecretsPlugin,
    SecretKeyError,
    Vault,
    console_ids,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from actionrt.service.catalog import Catalog

__all__ = ["CatalogKeys", "CatalogPublisher", "ServiceCatalog", "Snapshot", "read_snapshot", "write_snapshot"]

log = logging.getLogger("actionrt.fleet")

PUBLISHER: Final = "service"  # the `changed` message the service sends (workers send their name)
SOURCE: Final = "<service>/actions/{name}"


class CatalogKeys:
    """The keys of a queue's catalog, in the queue's hash slot (one transaction writes them)."""

    def __init__(self, queue: str) -> None:
        keys = QueueKeys(queue)
        self.actions = keys.base + "catalog:actions"  # hash: name -> action document (JSON)
        self.secrets = keys.base + "catalog:secrets"  # hash: console secret id -> ciphertext
        self.version = keys.base + "catalog:version"
        self.changed = keys.changed


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The catalog as published: raw documents by action name, ciphertexts by secret id."""

    version: int
    documents: dict[str, bytes]
    secrets: dict[str, bytes]


async def write_snapshot(
    client: aioredis.Redis,
    keys: CatalogKeys,
    documents: Mapping[str, Mapping[str, Any]],
    secrets: Mapping[str, bytes],
) -> int:
    """Replace the published catalog in one transaction and announce it; its new version."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.actions, keys.secrets)
        if documents:
            pipe.hset(keys.actions, mapping={name: json.dumps(doc) for name, doc in documents.items()})
        if secrets:
            pipe.hset(keys.secrets, mapping={secret_id: sealed for secret_id, sealed in secrets.items()})
        pipe.incr(keys.version)
        pipe.publish(keys.changed, PUBLISHER)
        answers = await pipe.execute()
    return int(answers[-2])


async def read_snapshot(client: aioredis.Redis, keys: CatalogKeys) -> Snapshot:
    """The published catalog, read in one transaction (never half of one snapshot and half of
    the next). Nothing published yet: version 0, no actions."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.version)
        pipe.hgetall(keys.actions)
        pipe.hgetall(keys.secrets)
        version, documents, secrets = await pipe.execute()
    return Snapshot(
        int(version or 0),
        {_text(name): raw for name, raw in documents.items()},
        {_text(sid): ciphertext for sid, ciphertext in secrets.items()},
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- the service's side ---------------------------------------------------------------------------


class CatalogPublisher:
    """Keeps a service's catalog published: once at start, then after every change (changes
    made while a snapshot is being written are coalesced into the next one). Redis outages are
    retried with backoff, one log line each; the edits wait, none is lost."""

    def __init__(self, catalog: Catalog, redis_url: str, queue: str) -> None:
        self.catalog = catalog
        self.redis_url = redis_url
        self.keys = CatalogKeys(queue)
        self.client = connect(redis_url, 2)
        self.version = 0  # the last version written
        self._written: Mapping[str, Any] | None = None  # the documents it held
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage = False
        catalog.on_change(self._wake)

    def start(self) -> None:
        """Publish now and after every change, until `aclose`."""
        self._loop = asyncio.get_running_loop()
        self._dirty.set()
        self._task = self._loop.create_task(self._run())

    def _wake(self) -> None:
        # The catalog changes on the event loop (the API's handlers); from any other thread the
        # wake-up is handed to the loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dirty.set)

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(REDIS_OUTAGE),
                    wait=wait_exponential(multiplier=0.05, max=2.0),
                    before_sleep=self._outage_seen,
                ):
                    with attempt:
                        await self.publish()
            except Exception:  # not an outage (a bug, a refused command): the next change retries
                log.exception("publishing the catalog failed")
                continue
            if self._outage:
                self._outage = False
                log.info("catalog published to %s again", shown_url(self.redis_url))

    def _outage_seen(self, state: RetryCallState) -> None:
        if not self._outage:
            self._outage = True
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "cannot publish the catalog to Redis at %s (%s); retrying with backoff",
                shown_url(self.redis_url),
                error,
            )

    async def publish(self) -> int:
        """Write the catalog as it is now; its version. A change that left the actions as they
        were (a journey's) writes nothing: the catalog's documents are replaced, never mutated."""
        documents = self.catalog.documents
        if documents is self._written:
            return self.version
        sealed: dict[str, bytes] = {}
        for secret_id in sorted(console_ids(list(documents.values()))):
            ciphertext = self.catalog.store.ciphertext(secret_id)
            if ciphertext is not None:
                sealed[secret_id] = ciphertext
        self.version = await write_snapshot(self.client, self.keys, documents, sealed)
        self._written = documents
        return self.version

    async def aclose(self) -> None:
        """Stop publishing (a change still waiting is written first, when Redis answers)."""
        self._loop = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            if self._dirty.is_set():
                try:
                    await self.publish()
                except REDIS_OUTAGE as exc:
                    log.warning("the last catalog change was not published: %s", exc)
        await self.client.aclose()


# -- the worker's side ----------------------------------------------------------------------------


def key_from_env() -> bytes | None:
    """`ACTIONRT_SECRET_KEY`, the service's Fernet key, when set (refused when malformed)."""
    configured = os.environ.get(KEY_ENV, "").strip()
    if not configured:
        return None
    try:
        Fernet(configured.encode())
    except (ValueError, TypeError):
        raise SecretKeyError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)") from None
    return configured.encode()


class ServiceCatalog:
    """A worker's view of the published catalog: it builds generations of actions from
    snapshots, and is the `console` secret provider, opening the sealed secrets with the
    service's key (`ACTIONRT_SECRET_KEY`) when a call needs them."""

    def __init__(self, client: aioredis.Redis, queue: str, key: bytes | None) -> None:
        self.client = client
        self.keys = CatalogKeys(queue)
        self.version: int | None = None  # of the snapshot loaded last
        self._vault = Vault(key) if key is not None else None
        # Secret ids are never reused (a changed secret gets a new id), so ciphertexts are only
        # ever added: a call running on an older generation still finds the secrets it names.
        self._sealed: dict[str, bytes] = {}
        self.plugin = ConsoleSecretsPlugin(ConsoleSecrets(self._open))

    async def read(self) -> Snapshot:
        return await read_snapshot(self.client, self.keys)

    def _open(self, secret_id: str) -> str | None:
        ciphertext = self._sealed.get(secret_id)
        if ciphertext is None or self._vault is None:
            return None
        return self._vault.open(ciphertext)

    def load(
        self,
        snapshot: Snapshot,
        plugins: Plugins,
        *,
        allow_private_network: bool,
        build: Callable[[Registry], Runtime],
    ) -> LoadedActions:
        """A generation of the snapshot's actions; each one that cannot be served (invalid, or
        its console secrets cannot be opened) is reported and left out, the others served."""
        self._sealed.update(snapshot.secrets)
        registry = Registry(plugins, allow_private_network)
        broken: dict[str, str] = {}
        for name, raw in sorted(snapshot.documents.items()):
            source = SOURCE.format(name=name)
            try:
                document = json.loads(raw)
                self._check_secrets(document, source)
                registry.add_action(document, source)
            except ValidationError as exc:
                reason = "; ".join(str(p) for p in exc.problems)
            except ValueError as exc:
                reason = f"{source}: not a JSON document ({exc})"
            else:
                continue
            broken[name] = f"action {name!r} failed to load: {reason}"
            log.error("cannot load %s: %s", source, reason)
        self.version = snapshot.version
        return LoadedActions(build(registry), broken)

    def _check_secrets(self, document: Any, source: str) -> None:
        """Refuse an action whose console secrets this worker cannot open (no key or another
        key than the service's): its calls would fail at every attempt."""
        ids = sorted(console_ids(document))
        if not ids:
            return
        if self._vault is None:
            raise ValidationError.single(
                source, "", f"it uses console secrets: set {KEY_ENV} to the service's key"
            )
        for secret_id in ids:
            if secret_id not in self._sealed:
                raise ValidationError.single(source, "", f"console secret {secret_id} was not published")
            if self._open(secret_id) is None:
                raise ValidationError.single(
                    source, "", f"console secret {secret_id} was sealed with another key than {KEY_ENV}"
                )
