"""The destination and header policy: which URLs, addresses and headers an action may use.

Stops server-side request forgery (private, loopback, link-local, metadata addresses, also after
DNS resolution and behind IPv6 forms) and header injection. `GuardedResolver` (the HTTP
package's `PolicyResolver`) plugs the policy into aiohttp so the connection goes to the very
address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

from actionrt.http import DestinationRefusedError, LookupFailedError
from actionrt.http import PolicyResolver as GuardedResolver
from actionrt.http.headers import control_character

__all__ = [
    "ALLOW_PRIVATE_NETWORK_ENV",
    "DEFAULT_DNS_TTL",
    "FORBIDDEN_HEADERS",
    "DestinationPolicy",
    "GuardedResolver",
    "Resolver",
    "check_header",
    "control_character",
    "is_forbidden_header",
]

ALLOW_PRIVATE_NETWORK_ENV: Final = "ACTIONRT_ALLOW_PRIVATE_NETWORK"

# getaddrinfo() does not report the record's TTL, so answers are kept for a fixed time.
DEFAULT_DNS_TTL: Final = 60.0

Resolver = Callable[[str, int], Awaitable[list[tuple[str, int]]]]
"""Answers (address, port) pairs for a host, like getaddrinfo's sockaddr; only the address is used."""

# Hop-by-hop headers and the ones the transport alone must compute: letting an action set them
# opens request smuggling (Content-Length / Transfer-Encoding), virtual-host confusion (Host) or
# connection hijacking (Connection, Upgrade). Names are lower case; any `proxy-*` is refused too.
FORBIDDEN_HEADERS: Final[frozenset[str]] = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)

# RFC 7230 §3.2.6: field-name = token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# CTLs other than horizontal tab are not allowed in a field value (RFC 7230 §3.2).
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA: Final = ipaddress.IPv4Address("169.254.169.254")
# Cloud metadata and credential endpoints: refused even when private networks are allowed for
# development (and 168.63.129.16, a public address, always), since no action ever has a reason
# to call them and they hand out the machine's credentials. Each with the page documenting it.
_METADATA_ENDPOINTS: Final[dict[_IPAddress, str]] = {
    # AWS EC2 IMDS, IPv4 and IPv6 (Nitro); also the address of GCP, Azure IMDS, Oracle OCI
    # IMDS, OpenStack, DigitalOcean and most others:
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
    # https://cloud.google.com/compute/docs/metadata/querying-metadata
    # https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
    # https://docs.oracle.com/iaas/Content/Compute/Tasks/gettingmetadata.htm
    _METADATA: "the cloud metadata address (link-local)",
    ipaddress.IPv6Address("fd00:ec2::254"): "the cloud metadata address of AWS over IPv6",
    # AWS ECS task metadata and task-role credentials (v2 to v4):
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v2.html
    ipaddress.IPv4Address("169.254.170.2"): "a cloud metadata endpoint (AWS ECS task credentials)",
    # AWS EKS Pod Identity agent, IPv4 and IPv6:
    # https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html
    ipaddress.IPv4Address("169.254.170.23"): "a cloud metadata endpoint (AWS EKS Pod Identity)",
    ipaddress.IPv6Address("fd00:ec2::23"): "a cloud metadata endpoint (AWS EKS Pod Identity)",
    # Azure WireServer, the host node's fixed virtual IP (a public address):
    # https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16
    ipaddress.IPv4Address("168.63.129.16"): "a cloud metadata endpoint (Azure WireServer)",
    # Alibaba Cloud ECS instance metadata:
    # https://www.alibabacloud.com/help/en/ecs/user-guide/overview-of-ecs-instance-metadata
    ipaddress.IPv4Address("100.100.100.200"): "a cloud metadata endpoint (Alibaba Cloud)",
    # Oracle Cloud@Customer and Oracle Cloud Classic instance metadata:
    # https://docs.oracle.com/en/cloud/cloud-at-customer/occ-get-started/retrieve-predefined-instance-metadata.html
    ipaddress.IPv4Address("192.0.0.192"): "a cloud metadata endpoint (Oracle Cloud)",
    # OpenStack metadata over IPv6 (the link-local twin of 169.254.169.254):
    # https://specs.openstack.org/openstack/neutron-specs/specs/ussuri/metadata-add-ipv6-support.html
    ipaddress.IPv6Address("fe80::a9fe:a9fe"): "a cloud metadata endpoint (OpenStack, IPv6)",
}
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")
# Named here rather than left to `is_private`/`is_global`, whose tables differ between Python
# patch releases: IETF protocol assignments (not globally routed, bar two anycast services no
# action calls) and the deprecated IPv6 site-local range, still routed inside some networks.
_IETF_PROTOCOL: Final = ipaddress.IPv4Network("192.0.0.0/24")
_SITE_LOCAL: Final = ipaddress.IPv6Network("fec0::/10")


def check_header(name: str, value: str) -> None:
    """Refuse a header an action may not send; raises ValueError saying why."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP field name (RFC 7230)")
    if is_forbidden_header(name):
        raise ValueError(f"header {name!r} cannot be set by an action")
    what = control_character(value)
    if what is not None:
        raise ValueError(f"header {name!r}: value contains {what}")


def is_forbidden_header(name: str) -> bool:
    """Whether `name` is a header only the transport or the connection may set."""
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-")


def _metadata_endpoint(addr: _IPAddress) -> str | None:
    """What cloud metadata endpoint `addr` is (or embeds, or names with a zone), or None."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            return _METADATA_ENDPOINTS.get(embedded)
        if addr.scope_id is not None:
            addr = ipaddress.IPv6Address(str(addr).partition("%")[0])
    return _METADATA_ENDPOINTS.get(addr)


def _refusal(addr: _IPAddress) -> str | None:
    """Why an address is not a public destination, or None when it is one."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            inner = _refusal(embedded)
            return f"embeds {embedded}, which {inner}" if inner else None
    if addr.is_unspecified:
        return "is unspecified"
    if addr.is_loopback:
        return "is loopback"
    endpoint = _metadata_endpoint(addr)
    if endpoint is not None:
        return f"is {endpoint}"
    if addr.is_link_local:
        return "is link-local"
    if addr.is_multicast:
        return "is multicast"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "is shared address space (CGNAT 100.64.0.0/10)"
    if isinstance(addr, ipaddress.IPv6Address) and addr in _UNIQUE_LOCAL:
        return "is unique local (fc00::/7)"
    if isinstance(addr, ipaddress.IPv6Address) and addr in _SITE_LOCAL:
        return "is site-local (fec0::/10)"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _IETF_PROTOCOL:
        return "is reserved for IETF protocol assignments (192.0.0.0/24)"
    if addr.is_reserved:
        return "is reserved"
    if addr.is_private:
        return "is private"
    if not addr.is_global:
        return "is not globally routable"
    return None


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64 or (addr in _IPV4_COMPATIBLE and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _parse_ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _looks_numeric_host(host: str) -> bool:
    """True for hosts that resolvers read as IPv4 (`127.1`, `0x7f.1`, `2130706433`)."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", last):
        return True
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _normalise_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".").encode("idna").decode("ascii")


class DestinationPolicy:
    """Which destinations an action may reach; built once per runtime.

    `allow_private_network=None` reads `ACTIONRT_ALLOW_PRIVATE_NETWORK` (`1`/`true`/`yes`).
    """

    def __init__(
        self,
        allow_private_network: bool | None = False,
        deny_domains: Sequence[str] = (),
        allow_domains: Sequence[str] | None = None,
        resolver: Resolver | None = None,
        *,
        dns_ttl: float = DEFAULT_DNS_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_cached_hosts: int = 10_000,
    ) -> None:
        if allow_private_network is None:
            allow_private_network = _env_flag(os.environ.get(ALLOW_PRIVATE_NETWORK_ENV, ""))
        self.allow_private_network: bool = allow_private_network
        self.deny_domains: tuple[str, ...] = tuple(_normalise_domain(d) for d in deny_domains)
        self.allow_domains: tuple[str, ...] | None = (
            None if allow_domains is None else tuple(_normalise_domain(d) for d in allow_domains)
        )
        self.dns_ttl = dns_ttl
        self._resolver = resolver
        self._clock = clock
        self._max_cached_hosts = max_cached_hosts
        # host -> (expiry, allowed addresses, refusal reason when none is allowed)
        self._cache: dict[str, tuple[float, list[str], str | None]] = {}
        self._pending: dict[str, asyncio.Future[tuple[list[str], str | None]]] = {}

    @classmethod
    def from_env(
        cls,
        deny_domains: Sequence[str] = (),
        allow_domains: Sequence[str] | None = None,
        resolver: Resolver | None = None,
        *,
        dns_ttl: float = DEFAULT_DNS_TTL,
    ) -> DestinationPolicy:
        """A policy whose `allow_private_network` comes from ACTIONRT_ALLOW_PRIVATE_NETWORK."""
        return cls(None, deny_domains, allow_domains, resolver, dns_ttl=dns_ttl)

    # -- checks that need no network -------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Refuse a URL by its text alone: scheme, host form, domain lists, port."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DestinationRefusedError(f"malformed URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise DestinationRefusedError(f"scheme {parts.scheme or '(none)'!r} is not http or https")
        if parts.username is not None or parts.password is not None:
            raise DestinationRefusedError("credentials in the URL are not allowed")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise DestinationRefusedError("URL has no host")
        literal = _parse_ip(host)
        if literal is not None or _looks_numeric_host(host):
            if not self.allow_private_network:
                raise DestinationRefusedError(f"IP address host {host!r} is not allowed")
            if literal is not None:
                self.check_address(host)
        else:
            self._check_domain(host)
        if port is not None and port != _DEFAULT_PORTS[scheme] and not self.allow_private_network:
            raise DestinationRefusedError(
                f"port {port} is not allowed (only {_DEFAULT_PORTS[scheme]} for {scheme})"
            )

    def _check_domain(self, host: str) -> None:
        try:
            name = _normalise_domain(host)
        except UnicodeError:
            raise DestinationRefusedError(f"host {host!r} is not a valid domain name") from None
        for denied in self.deny_domains:
            if _domain_matches(name, denied):
                raise DestinationRefusedError(f"host {host!r} is in the denied domain {denied!r}")
        if self.allow_domains is not None and not any(
            _domain_matches(name, allowed) for allowed in self.allow_domains
        ):
            raise DestinationRefusedError(f"host {host!r} is not in the allowed domains")

    def check_address(self, ip: str) -> None:
        """Refuse an address that is not public (only the cloud metadata address when private
        networks are allowed)."""
        addr = _parse_ip(ip)
        if self.allow_private_network:
            endpoint = _metadata_endpoint(addr) if addr is not None else None
            if endpoint is not None:
                raise DestinationRefusedError(f"address {ip} is {endpoint}, refused even on private networks")
            return
        if addr is None:
            raise DestinationRefusedError(f"{ip!r} is not an IP address")
        reason = _refusal(addr)
        if reason is not None:
            raise DestinationRefusedError(f"address {ip} {reason}")

    # -- resolution --------------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses of `host`, cached for `dns_ttl` seconds; refuses when none is."""
        host = host.rstrip(".").lower()
        if _parse_ip(host) is not None:
            self.check_address(host)
            return [host]
        cached = self._cache.get(host)
        if cached is not None and cached[0] > self._clock():
            return _allowed_or_raise(host, cached[1], cached[2])
        pending = self._pending.get(host)
        if pending is None:
            # One lookup per host at a time: concurrent calls wait for the same answer.
            pending = asyncio.get_running_loop().create_future()
            self._pending[host] = pending
            try:
                answer = await self._lookup(host, port)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: waiters (if any) re-raise it themselves
                raise
            finally:
                del self._pending[host]
            pending.set_result(answer)
            self._store(host, answer)
        else:
            answer = await asyncio.shield(pending)
        return _allowed_or_raise(host, *answer)

    async def _lookup(self, host: str, port: int) -> tuple[list[str], str | None]:
        try:
            if self._resolver is not None:
                pairs = await self._resolver(host, port)
                found = [address for address, _ in pairs]
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
                found = [str(info[4][0]) for info in infos]
        except OSError as exc:
            raise LookupFailedError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        allowed: list[str] = []
        reason: str | None = None
        for address in dict.fromkeys(found):  # unique, in the resolver's order
            try:
                self.check_address(address)
            except DestinationRefusedError as exc:
                reason = reason or str(exc)
            else:
                allowed.append(address)
        if not found:
            reason = f"{host!r} resolved to no address"
        return allowed, reason

    def _store(self, host: str, answer: tuple[list[str], str | None]) -> None:
        if len(self._cache) >= self._max_cached_hosts:
            now = self._clock()
            for key in [k for k, v in self._cache.items() if v[0] <= now]:
                del self._cache[key]
            while len(self._cache) >= self._max_cached_hosts:
                del self._cache[next(iter(self._cache))]
        self._cache[host] = (self._clock() + self.dns_ttl, *answer)


def _allowed_or_raise(host: str, allowed: list[str], reason: str | None) -> list[str]:
    if not allowed:
        raise DestinationRefusedError(f"{host!r} refused: {reason or 'no allowed address'}")
    return list(allowed)


def _env_flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}
