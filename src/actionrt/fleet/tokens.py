"""One token for the fleet: tokens kept in Redis, sealed with Fernet under a key derived from
the credentials themselves (only processes holding the credentials can read them), refreshed
by one process at a time under a lock whose lease expires if its holder dies."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import redis.asyncio as aioredis
from cryptography.fernet import Fernet, InvalidToken

from actionrt.auth.tokens import FetchedToken, TokenEntry
from actionrt.fleet.redis_streams import REDIS_OUTAGE

__all__ = ["RedisTokenStore"]

log = logging.getLogger("actionrt.fleet")

DEFAULT_LEASE: Final = 15.0  # seconds: longer than one token call (10 s) may take
_WAIT_STEP: Final = 0.02  # how often a process waiting for another's refresh looks again

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """`TokenStore` on Redis (see `actionrt.auth.tokens.TokenStore`)."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str = "actionrt:tokens:", lease: float = DEFAULT_LEASE
    ):
        self.client = client
        self.prefix = prefix
        self.lease = lease
        self._release = client.register_script(_RELEASE)
        self._outage = False

    async def fetch(self, entry: TokenEntry, fetch: Callable[[], Awaitable[FetchedToken]]) -> FetchedToken:
        if not entry.seal:  # not derived from credentials: nothing to seal with, keep it local
            return await fetch()
        try:
            return await self._shared(entry, fetch)
        except REDIS_OUTAGE as exc:
            if not self._outage:
                self._outage = True
                log.warning("token store unreachable (%s); fetching tokens per process", type(exc).__name__)
            return await fetch()

    async def _shared(self, entry: TokenEntry, fetch: Callable[[], Awaitable[FetchedToken]]) -> FetchedToken:
        key = self.prefix + entry.key
        lock = key + ":lock"
        sealer = Fernet(base64.urlsafe_b64encode(entry.seal))
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 2 * self.lease
        while True:
            shared = await self._load(key, sealer, entry.rejected)
            if shared is not None:
                return shared
            owner = uuid.uuid4().hex
            if await self.client.set(lock, owner, nx=True, px=int(self.lease * 1000)):
                try:
                    shared = await self._load(key, sealer, entry.rejected)
                    if shared is not None:
                        return shared
                    fetched = await fetch()
                    if fetched.lifetime > 0:
                        sealed = sealer.encrypt(fetched.value.encode("utf-8"))
                        await self.client.set(key, sealed, px=max(1, int(fetched.lifetime * 1000)))
                    self._outage = False
                    return fetched
                finally:
                    await self._release(keys=[lock], args=[owner])
            if loop.time() > give_up:  # the holder neither finished nor let its lease lapse
                return await fetch()
            # Another process is refreshing: its token lands in Redis within the lease, or the
            # lease lapses (it died) and this process takes the lock.
            await asyncio.sleep(_WAIT_STEP)

    async def _load(self, key: str, sealer: Fernet, rejected: str) -> FetchedToken | None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            sealed, ttl = await pipe.execute()
        if sealed is None or ttl is None or ttl <= 0:
            return None
        try:
            value = sealer.decrypt(sealed).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            return None  # sealed by other credentials' key (a rotated secret): fetch anew
        if value == rejected:
            return None
        return FetchedToken(value, ttl / 1000)
