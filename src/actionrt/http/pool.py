"""Keep-alive connections pooled per host, each host with its own limit and waiting line.

A slow host fills its own pool and its own line; a call to another host never waits behind it
and never loses an idle connection to it. Only the total limit (file descriptors are finite)
is shared: when every slot is taken, an idle connection (never a busy one) is closed to make
room, and failing that the call waits for any connection to close.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from functools import partial

from actionrt.http.protocol import Http1Connection
from actionrt.http.types import DEFAULT_CONNECTION_LIMIT, DEFAULT_TOTAL_CONNECTION_LIMIT

_MAX_HOSTS = 4096

PoolKey = tuple[str, int, ssl.SSLContext | None, tuple[str, int, str] | None]
"""(host, port, TLS context, proxy identity): connections are shared only when all four match,
so direct and proxied connections, and those of different proxies or proxy users, never mix."""


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """How many connections a transport keeps open: per host, in total, and for how long idle."""

    per_host: int = DEFAULT_CONNECTION_LIMIT
    total: int = DEFAULT_TOTAL_CONNECTION_LIMIT
    keepalive: float = 15.0

    def __post_init__(self) -> None:
        if self.per_host < 1 or self.total < 1:
            raise ValueError("connection limits must be at least 1")
        if self.keepalive < 0:
            raise ValueError("keepalive must be zero or more seconds")


class HostPool:
    """The connections to one `PoolKey`: idle ones (newest last), how many are open, who waits."""

    __slots__ = ("idle", "key", "limit", "name", "open", "waiters")

    def __init__(self, key: PoolKey, name: str, limit: int) -> None:
        self.key = key
        self.name = name
        self.limit = limit
        self.idle: list[Http1Connection] = []
        self.open = 0  # open or being opened
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def wake_one(self) -> None:
        _wake_one(self.waiters)


class ConnectionPools:
    """Every `HostPool` of one transport, and the total count they share."""

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self.hosts: dict[PoolKey, HostPool] = {}
        self.open = 0
        self._total_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def host(self, key: PoolKey, name: str) -> HostPool:
        host = self.hosts.get(key)
        if host is None:
            if len(self.hosts) >= _MAX_HOSTS:  # forget hosts with nothing open and nobody waiting
                for unused in [k for k, h in self.hosts.items() if not h.open and not h.waiters]:
                    del self.hosts[unused]
            host = self.hosts[key] = HostPool(key, name, self.limits.per_host)
        return host

    def take_idle(self, host: HostPool) -> Http1Connection | None:
        """The newest idle connection still worth using; older ones past keepalive are closed.
        Each is timed by its own loop (`Http1Connection.loop`): no `get_running_loop` here."""
        idle = host.idle
        while idle:
            connection = idle.pop()
            transport, loop = connection.transport, connection.loop
            if (
                connection.idle
                and transport is not None
                and loop is not None
                and not transport.is_closing()
                and loop.time() - connection.idle_since < self.limits.keepalive
            ):
                return connection
            connection.close()
        return None

    def reserve(self, host: HostPool) -> bool:
        """Take a slot for a new connection to `host` when its limit and the total allow."""
        if host.open >= host.limit:
            return False
        if self.open >= self.limits.total and not self._close_one_idle():
            return False
        host.open += 1
        self.open += 1
        return True

    def release(self, host: HostPool) -> None:
        """A slot is free again: its connection closed, or it was never made."""
        host.open -= 1
        self.open -= 1
        host.wake_one()
        _wake_one(self._total_waiters)

    def connection_for(self, host: HostPool) -> Http1Connection:
        """A new protocol object counted in `host` (its slot already reserved)."""
        return Http1Connection(partial(self._closed, host))

    def _closed(self, host: HostPool, connection: Http1Connection) -> None:
        self.release(host)

    def give_back(self, host: HostPool, connection: Http1Connection) -> None:
        loop = connection.loop
        if not connection.idle or loop is None:
            connection.close()
            return
        connection.idle_since = loop.time()
        host.idle.append(connection)
        host.wake_one()
        if self._total_waiters:  # a call of another host may close it to make room
            _wake_one(self._total_waiters)

    async def wait(self, host: HostPool) -> None:
        """Until a connection of `host` comes back or closes; or, when the host has room but
        the total is reached, until any connection closes (first come, first served)."""
        line = host.waiters if host.open >= host.limit else self._total_waiters
        waiter = asyncio.get_running_loop().create_future()
        line.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                _wake_one(line)  # pass the wake-up on
            raise

    def waiting_for(self, host: HostPool) -> str:
        """What a call waiting on `host` waits for, in words."""
        if host.open >= host.limit:
            return f"no connection free to {host.name} ({host.open} in use)"
        return f"no connection slot free ({self.open} open to all hosts)"

    def _close_one_idle(self) -> bool:
        oldest: Http1Connection | None = None
        owner: HostPool | None = None
        for host in self.hosts.values():
            if host.idle and (oldest is None or host.idle[0].idle_since < oldest.idle_since):
                oldest, owner = host.idle[0], host
        if oldest is None or owner is None:
            return False
        owner.idle.remove(oldest)
        oldest.close()  # releases its slot
        return True

    def close_all(self) -> None:
        for host in self.hosts.values():
            for connection in host.idle:
                connection.close()
            host.idle.clear()


def _wake_one(waiters: collections.deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
