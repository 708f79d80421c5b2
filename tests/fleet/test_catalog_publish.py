"""The catalog in Redis, in process: what the service's publisher writes (with the real Redis),
how it rides out an outage, and how a worker builds its actions from a snapshot."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from fleet_support import REDIS_URL, RedisProxy

from actionrt.fleet.catalog import CatalogKeys, CatalogPublisher, ServiceCatalog, Snapshot, read_snapshot
from actionrt.plugins import Plugins
from actionrt.runtime import Runtime
from actionrt.service.catalog import Catalog
from actionrt.service.store import Store
from actionrt.service.vault import CONSOLE_REF, Vault

KEY = Fernet.generate_key()


def ping(url: str = "http://127.0.0.1:9/v1/ping", name: str = "ping", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": {"url": url, "method": "POST"},
        "request": {"sample": {"n": 1}, "variables": {"n": {"label": "N"}}},
        **extra,
    }


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(
        Store(tmp_path / "store.db"), Vault(KEY), allow_private_network=True, entry_points=False
    )
    catalog.load()
    return catalog


class Announcements:
    """The queue's `changed` channel, as a worker hears it."""

    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    async def next(self) -> bytes:
        async with asyncio.timeout(30):
            while True:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
                if message is not None:
                    return bytes(message["data"])


@pytest.fixture
async def announcements(queue_name: str, redis_client: aioredis.Redis) -> AsyncIterator[Announcements]:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(CatalogKeys(queue_name).changed)
    try:
        yield Announcements(pubsub)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_the_catalog_is_published_at_start_and_after_each_change_secrets_sealed(
    catalog: Catalog, queue_name: str, redis_client: aioredis.Redis, announcements: Announcements
) -> None:
    catalog.create(ping(authentication={"type": "bearer", "token": "tok-s3cret"}))
    publisher = CatalogPublisher(catalog, REDIS_URL, queue_name)
    keys = CatalogKeys(queue_name)
    publisher.start()
    try:
        assert await announcements.next() == b"service"
        first = await read_snapshot(redis_client, keys)
        document = json.loads(first.documents["ping"])
        found = CONSOLE_REF.search(document["authentication"]["token"])
        assert found is not None  # a reference; the value is sealed beside it
        assert list(first.secrets) == [found["id"]]
        assert b"tok-s3cret" not in first.documents["ping"] + first.secrets[found["id"]]
        assert Vault(KEY).open(first.secrets[found["id"]]) == "tok-s3cret"

        current = catalog.document("ping")
        current["endpoint"]["url"] = "http://127.0.0.1:9/v2/ping"
        catalog.update("ping", current)
        await announcements.next()
        second = await read_snapshot(redis_client, keys)
        assert second.version == first.version + 1
        assert json.loads(second.documents["ping"])["endpoint"]["url"] == "http://127.0.0.1:9/v2/ping"

        catalog.delete("ping")
        await announcements.next()
        third = await read_snapshot(redis_client, keys)
        assert (third.version, third.documents, third.secrets) == (second.version + 1, {}, {})
    finally:
        await publisher.aclose()


async def test_changes_made_together_are_one_snapshot_and_a_journey_change_none(
    catalog: Catalog, queue_name: str, redis_client: aioredis.Redis, announcements: Announcements
) -> None:
    publisher = CatalogPublisher(catalog, REDIS_URL, queue_name)
    publisher.start()
    try:
        for name in ("a", "b", "c"):  # within one tick: the publisher has not run yet
            catalog.create(ping(name=name))
        await announcements.next()
        snapshot = await read_snapshot(redis_client, CatalogKeys(queue_name))
        assert (snapshot.version, sorted(snapshot.documents)) == (1, ["a", "b", "c"])
        node = {"id": "n1", "action": "a", "mappings": {"params": {"n": "{{ profile.n }}"}}}
        journey = {"id": "j1", "name": "J", "status": "draft", "nodes": [node]}
        catalog.add_journey(journey)  # the actions are unchanged: nothing is written
        catalog.create(ping(name="d"))
        await announcements.next()
        assert (await read_snapshot(redis_client, CatalogKeys(queue_name))).version == 2
    finally:
        await publisher.aclose()


class Seen(logging.Handler):
    """Log lines of the fleet, with an event per line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.line = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.line.set()

    async def until(self, text: str) -> None:
        async with asyncio.timeout(30):
            while not any(text in line for line in self.lines):
                self.line.clear()
                await self.line.wait()


async def test_an_edit_made_while_redis_is_out_is_published_when_it_is_back(
    catalog: Catalog, queue_name: str, redis_client: aioredis.Redis, announcements: Announcements
) -> None:
    proxy = RedisProxy()
    await proxy.start()
    seen = Seen()
    logger = logging.getLogger("actionrt.fleet")
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.INFO)
    publisher = CatalogPublisher(catalog, proxy.url, queue_name)
    try:
        publisher.start()
        await announcements.next()
        proxy.down()
        catalog.create(ping(name="during"))
        await seen.until("cannot publish the catalog to Redis")
        proxy.up()
        await announcements.next()
        await seen.until("catalog published to")
        snapshot = await read_snapshot(redis_client, CatalogKeys(queue_name))
        assert list(snapshot.documents) == ["during"]
        assert sum("cannot publish" in line for line in seen.lines) == 1  # one line per outage
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
        await publisher.aclose()
        await proxy.stop()


def test_a_worker_serves_the_valid_actions_of_a_snapshot_and_reports_the_others() -> None:
    secret_id = "s_00000000000000aa"
    sealed = Vault(KEY).seal("tok")
    documents = {
        "ok": json.dumps(ping(name="ok")).encode(),
        "garbled": b"{not json",
        "invalid": json.dumps(ping(name="invalid", endpoint={"url": "ftp://x", "method": "POST"})).encode(),
        "secretive": json.dumps(
            ping(
                name="secretive",
                authentication={"type": "bearer", "token": f"{{{{ secrets.console:{secret_id} }}}}"},
            )
        ).encode(),
    }
    snapshot = Snapshot(7, documents, {secret_id: sealed})
    reasons = {}
    for key, served in ((KEY, {"ok", "secretive"}), (Fernet.generate_key(), {"ok"}), (None, {"ok"})):
        catalog = ServiceCatalog(aioredis.Redis.from_url(REDIS_URL), "unused", key)
        plugins = Plugins.load((catalog.plugin,), entry_points=False)
        generation = catalog.load(snapshot, plugins, allow_private_network=True, build=Runtime)
        assert set(generation.runtime.actions) == served
        assert catalog.version == 7
        assert generation.broken["garbled"].startswith(
            "action 'garbled' failed to load: <service>/actions/garbled"
        )
        assert "<service>/actions/invalid: endpoint.url" in generation.broken["invalid"]
        reasons[key] = generation.broken.get("secretive")
        opened = plugins.secret_providers["console"].get(secret_id)
        assert opened == ("tok" if key == KEY else None)
    assert reasons[KEY] is None
    assert [reason for k, reason in reasons.items() if k != KEY] == [
        f"action 'secretive' failed to load: <service>/actions/secretive: console secret {secret_id} "
        "was sealed with another key than ACTIONRT_SECRET_KEY",
        "action 'secretive' failed to load: <service>/actions/secretive: it uses console secrets: "
        "set ACTIONRT_SECRET_KEY to the service's key",
    ]
