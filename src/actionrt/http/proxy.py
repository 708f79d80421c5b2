"""Forward proxies: which proxy carries a call, and how a tunnel through it is opened.

The rules follow Python's `urllib.request` (`getproxies_environment` and
`proxy_bypass_environment`): `https_proxy` / `http_proxy` per target scheme, the lower-case
name winning over the upper-case one, `no_proxy` a comma-separated list of host names or
domain suffixes (`example.com` covers `api.example.com`; `host:port` only that port), `*` for
every host. An explicit proxy (the runtime's `proxy=` option, `ACTIONRT_PROXY`, `--proxy`)
carries both schemes and wins over the variables; `no_proxy` still applies to it while the
environment is trusted.

Only `http://` proxies are spoken: absolute-form requests for `http://` targets, a CONNECT
tunnel then TLS to the origin for `https://` ones. Credentials travel as
`Proxy-Authorization: Basic`; they are never part of a message, a `repr` or a pool's name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from actionrt.http.errors import ConnectError, LookupFailedError, ProxyRefusedError
from actionrt.secrets import FileSecrets, MappingSecrets, MissingSecretError, SecretResolver

PROXY_ENV = "ACTIONRT_PROXY"
"""One proxy URL for every call, winning over `HTTPS_PROXY`/`HTTP_PROXY` (an operator setting)."""

MAX_CONNECT_ANSWER = 64 * 1024
"""The head of a proxy's answer to CONNECT, in bytes."""
# A CONNECT answered with one of these: the proxy could not reach the origin, retried like a
# refused connection. Any other refusal (403, 407, ...) is the proxy's policy: final.
_UPSTREAM_FAILED = frozenset({502, 503, 504})
# urllib's NO_PROXY matching, the same function `urllib.request.proxy_bypass` runs on Linux; on
# every CPython 3 but not in typeshed. Called with our snapshot of the variables.
_bypass: Callable[[str, Mapping[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True, repr=False)
class Proxy:
    """One `http://` proxy: where it listens and the `Proxy-Authorization` it is sent.

    `identity` tells pools apart without holding the credentials in clear: connections made
    through different proxies, or the same proxy as different users, are never shared.
    """

    host: str
    port: int
    authorization: str | None = None
    identity: tuple[str, int, str] = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256((self.authorization or "").encode()).hexdigest()[:16]
        object.__setattr__(self, "identity", (self.host, self.port, digest))

    @property
    def shown(self) -> str:
        """`host:port`, for messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str, *, where: str = "proxy") -> Proxy:
        """The proxy of `http://[user:password@]host[:port]` (no scheme means `http://`, the
        port defaults to 80); ValueError naming `where` and the problem, never the password."""
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port or 80
            host = parts.hostname or ""
        except ValueError:
            raise ValueError(f"{where}: not a proxy URL (http://host:port)") from None
        scheme = parts.scheme.lower()
        if scheme != "http":
            raise ValueError(f"{where}: {scheme}:// proxies are not supported (http://host:port only)")
        if not host:
            raise ValueError(f"{where}: the proxy URL has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{where}: a proxy URL is http://host:port, with no path or query")
        authorization = None
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            if any(c in user + password for c in "\r\n\x00"):
                raise ValueError(f"{where}: the proxy credentials contain a line break or NUL")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {token}"
        try:
            host = host.encode("idna").decode("ascii") if ":" not in host else host
        except UnicodeError:
            raise ValueError(f"{where}: {host!r} is not a valid host name") from None
        return cls(host, port, authorization)

    def __repr__(self) -> str:  # never the credentials
        return f"Proxy({self.shown}, credentials={'yes' if self.authorization else 'no'})"


class ProxyRules:
    """Which proxy, if any, carries a call to `scheme://host:port`; read once, when built.

    `proxy` (a `Proxy` or its URL) carries every call; else, with `trust_env`, the standard
    variables decide. With `trust_env=False` the variables (`no_proxy` included) are ignored.
    """

    def __init__(self, proxy: Proxy | str | None = None, *, trust_env: bool = True) -> None:
        environment: Mapping[str, str] = urllib.request.getproxies_environment() if trust_env else {}
        self._environment = dict(environment)
        self.explicit = Proxy.parse(proxy) if isinstance(proxy, str) else proxy
        self._by_scheme: dict[str, Proxy | None] = {}
        for scheme in ("http", "https"):
            self._by_scheme[scheme] = self.explicit
            if self.explicit is None and environment.get(scheme):
                self._by_scheme[scheme] = Proxy.parse(environment[scheme], where=f"{scheme}_proxy")
        self.active = any(self._by_scheme.values())

    def hosts(self) -> frozenset[str]:
        """The proxies' host names (the operator's: resolved without the destination policy)."""
        return frozenset(proxy.host for proxy in self._by_scheme.values() if proxy is not None)

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for this origin, or None for a direct connection."""
        proxy = self._by_scheme.get(scheme)
        if proxy is None:
            return None
        shown = f"[{host}]" if ":" in host else host
        if _bypass(f"{shown}:{port}", self._environment):
            return None
        if ":" in host and _bypass(host, self._environment):
            return None  # an IPv6 literal listed without brackets
        return proxy

    def __repr__(self) -> str:
        return f"ProxyRules(http={self._by_scheme['http']!r}, https={self._by_scheme['https']!r})"


def proxy_rules(proxy: str | None = None, *, trust_env: bool = True) -> ProxyRules:
    """The forward proxy of calls: `proxy` (else `ACTIONRT_PROXY`) for every call, else with
    `trust_env` the standard `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`. The explicit URL's
    credentials may be secret references, read for the operator (any environment variable,
    or `{{ secrets.file:NAME }}`): the proxy is the operator's setting, not an action's, so its
    password need not be, and should not be, one actions may read. ValueError naming what is
    wrong, never a value."""
    template = proxy if proxy is not None else os.environ.get(PROXY_ENV) or None
    if template is None:
        return ProxyRules(None, trust_env=trust_env)
    operator = SecretResolver({"env": MappingSecrets(os.environ), "file": FileSecrets()})
    try:
        return ProxyRules(Proxy.parse(operator.resolve(template)), trust_env=trust_env)
    except MissingSecretError as exc:
        raise ValueError(f"proxy: {exc}") from None


async def proxy_addresses(proxy: Proxy) -> list[str]:
    """The proxy's addresses. It is the operator's: no destination policy applies to it."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise LookupFailedError(f"cannot resolve the proxy {proxy.shown}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def open_tunnel(sock: socket.socket, proxy: Proxy, host_header: str, target: str) -> None:
    """Ask the proxy on `sock` for a tunnel to `target` (`host:port`) with CONNECT and read
    its answer; the socket then carries the TLS handshake with the origin.

    A 2xx opens the tunnel; 502/503/504 (the proxy could not reach the origin) is a
    `ConnectError`, retried; any other status is `ProxyRefusedError`, final.
    """
    loop = asyncio.get_running_loop()
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.authorization is not None:
        head += f"Proxy-Authorization: {proxy.authorization}\r\n"
    try:
        await loop.sock_sendall(sock, (head + "\r\n").encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            if len(answer) > MAX_CONNECT_ANSWER:
                raise ConnectError(f"the proxy {proxy.shown} sent a CONNECT answer longer than 64 KiB")
            piece = await loop.sock_recv(sock, 4096)
            if not piece:
                raise ConnectError(f"the proxy {proxy.shown} closed the connection during CONNECT")
            answer += piece
    except OSError as exc:
        raise ConnectError(f"the proxy {proxy.shown} broke the CONNECT ({exc.strerror or exc})") from None
    head_bytes, _, rest = answer.partition(b"\r\n\r\n")
    status_line = head_bytes.split(b"\r\n", 1)[0].decode("latin-1")
    pieces = status_line.split(" ", 2)
    if len(pieces) < 2 or not pieces[0].startswith("HTTP/1.") or not pieces[1].isdigit():
        raise ConnectError(f"the proxy {proxy.shown} did not answer CONNECT in HTTP/1.1")
    status = int(pieces[1])
    if 200 <= status < 300:
        if rest:  # the origin speaks after our ClientHello only: these bytes are no TLS
            raise ConnectError(f"the proxy {proxy.shown} sent bytes after its CONNECT answer")
        return
    if status in _UPSTREAM_FAILED:
        raise ConnectError(f"the proxy {proxy.shown} could not reach {host_header} ({status})")
    raise proxy_refusal(proxy, status, f"CONNECT to {host_header}")


def proxy_refusal(proxy: Proxy, status: int, what: str) -> ProxyRefusedError:
    """The refusal of a proxy that answered `status` to `what`: 407 says whether
    credentials were sent (never which)."""
    if status == 407:
        why = (
            "refused the proxy credentials (407)"
            if proxy.authorization is not None
            else "requires credentials (407): none are configured"
        )
        return ProxyRefusedError(f"the proxy {proxy.shown} {why} for {what}")
    return ProxyRefusedError(f"the proxy {proxy.shown} refused {what} ({status})")
