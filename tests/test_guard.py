"""The destination policy: URLs, every refused address class, DNS answers, headers, aiohttp."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from actionrt.guard import (
    ALLOW_PRIVATE_NETWORK_ENV,
    FORBIDDEN_HEADERS,
    DestinationPolicy,
    GuardedResolver,
    check_header,
)
from actionrt.http import DestinationRefusedError, LookupFailedError

# -- addresses ---------------------------------------------------------------------------------

REFUSED_ADDRESSES = {
    "loopback v4": "127.0.0.1",
    "loopback v4, other": "127.8.9.10",
    "loopback v6": "::1",
    "RFC 1918 10/8": "10.1.2.3",
    "RFC 1918 172.16/12": "172.20.0.5",
    "RFC 1918 192.168/16": "192.168.1.1",
    "unique local fc00::/7": "fd12:3456::1",
    "unique local fc00::": "fc00::1",
    "link-local v4": "169.254.10.10",
    "cloud metadata": "169.254.169.254",
    "link-local v6": "fe80::1",
    "link-local v6 with scope": "fe80::1%1",
    "CGNAT": "100.64.0.1",
    "CGNAT top": "100.127.255.254",
    "multicast v4": "224.0.0.251",
    "multicast v4 global scope": "233.252.0.1",
    "multicast v6": "ff02::1",
    "unspecified v4": "0.0.0.0",
    "unspecified v6": "::",
    "this network 0/8": "0.1.2.3",
    "reserved 240/4": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "documentation": "192.0.2.1",
    "benchmarking": "198.18.0.1",
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped private": "::ffff:10.0.0.1",
    "IPv4-mapped metadata": "::ffff:169.254.169.254",
    "IPv4-mapped CGNAT": "::ffff:100.64.0.1",
    "IPv4-mapped, hex form": "::ffff:a9fe:a9fe",
    "IPv4-compatible loopback": "::127.0.0.1",
    "IPv4-compatible private": "::10.0.0.1",
    "NAT64 of private": "64:ff9b::10.0.0.1",
    "6to4 of private": "2002:c0a8:0101::1",
    "6to4 of metadata": "2002:a9fe:a9fe::1",
    "documentation v6": "2001:db8::1",
    # Not left to `ipaddress.is_private`/`is_global`, whose tables change between Python patch
    # releases (3.11.7 calls both of these global):
    "IETF protocol assignments 192.0.0/24": "192.0.0.8",
    "site-local v6 fec0::/10 (deprecated)": "fec0::1",
    "IPv4-mapped IETF protocol assignment": "::ffff:192.0.0.170",
}

PUBLIC_ADDRESSES = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES.values(), ids=REFUSED_ADDRESSES.keys())
def test_every_non_public_address_class_is_refused(address: str) -> None:
    with pytest.raises(DestinationRefusedError, match="address"):
        DestinationPolicy().check_address(address)


# Every refused class but the cloud metadata address, which stays refused (tested below).
PRIVATE_ADDRESSES = {
    k: v for k, v in REFUSED_ADDRESSES.items() if "metadata" not in k and "hex form" not in k
}


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES.values(), ids=PRIVATE_ADDRESSES.keys())
def test_allow_private_network_lifts_the_address_check(address: str) -> None:
    DestinationPolicy(allow_private_network=True).check_address(address)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass(address: str) -> None:
    DestinationPolicy().check_address(address)


def test_refusal_reason_is_one_line_naming_the_class() -> None:
    with pytest.raises(DestinationRefusedError) as caught:
        DestinationPolicy().check_address("::ffff:169.254.169.254")
    assert str(caught.value) == (
        "address ::ffff:169.254.169.254 embeds 169.254.169.254, "
        "which is the cloud metadata address (link-local)"
    )


def test_a_name_is_not_an_address() -> None:
    with pytest.raises(DestinationRefusedError, match="not an IP address"):
        DestinationPolicy().check_address("example.com")


# -- URLs ----------------------------------------------------------------------------------------

REFUSED_URLS = {
    "ftp scheme": "ftp://api.example.com/x",
    "file scheme": "file:///etc/passwd",
    "no scheme": "api.example.com/x",
    "no host": "https:///x",
    "IPv4 literal": "https://93.184.216.34/x",
    "loopback literal": "http://127.0.0.1/x",
    "IPv6 literal": "https://[2606:4700:4700::1111]/x",
    "mapped IPv6 literal": "http://[::ffff:127.0.0.1]/",
    "short IPv4": "http://127.1/",
    "integer IPv4": "http://2130706433/",
    "hex IPv4": "http://0x7f000001/",
    "octal-ish IPv4": "http://0177.0.0.1/",
    "numeric last label": "http://foo.123/",
    "non-default https port": "https://api.example.com:8443/x",
    "non-default http port": "http://api.example.com:8080/x",
    "https on port 80": "https://api.example.com:80/x",
    "credentials": "https://user:pass@api.example.com/x",
    "bad port": "https://api.example.com:99999/x",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_urls_refused_by_their_text(url: str) -> None:
    with pytest.raises(DestinationRefusedError):
        DestinationPolicy().check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/x?q=1",
        "http://api.example.com/",
        "https://api.example.com:443/x",
        "HTTPS://API.EXAMPLE.COM/x",
        "https://api.example.com./x",
        "https://bücher.example/x",
    ],
)
def test_ordinary_urls_pass(url: str) -> None:
    DestinationPolicy().check_url(url)


def test_allow_private_network_allows_ip_literals_and_ports() -> None:
    policy = DestinationPolicy(allow_private_network=True)
    policy.check_url("http://127.0.0.1:8080/x")
    policy.check_url("http://[::1]:9000/x")
    with pytest.raises(DestinationRefusedError, match="scheme"):
        policy.check_url("gopher://127.0.0.1/")


def test_deny_list_refuses_the_domain_and_its_subdomains() -> None:
    policy = DestinationPolicy(deny_domains=["evil.example", "Metadata.Google.Internal."])
    for url in ("https://evil.example/", "https://a.b.evil.example/x", "http://metadata.google.internal/"):
        with pytest.raises(DestinationRefusedError, match="denied domain"):
            policy.check_url(url)
    policy.check_url("https://notevil.example/")  # a suffix match must be on a label boundary


def test_allow_list_admits_only_its_domains() -> None:
    policy = DestinationPolicy(allow_domains=["example.com"])
    policy.check_url("https://example.com/")
    policy.check_url("https://api.example.com/")
    for url in ("https://example.org/", "https://badexample.com/"):
        with pytest.raises(DestinationRefusedError, match="not in the allowed domains"):
            policy.check_url(url)


def test_domain_lists_apply_even_with_private_network_allowed() -> None:
    policy = DestinationPolicy(allow_private_network=True, deny_domains=["internal.test"])
    with pytest.raises(DestinationRefusedError):
        policy.check_url("http://db.internal.test:5432/")


def test_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_NETWORK_ENV, "1")
    assert DestinationPolicy.from_env().allow_private_network
    assert DestinationPolicy(None).allow_private_network
    assert not DestinationPolicy().allow_private_network  # an explicit False wins
    monkeypatch.setenv(ALLOW_PRIVATE_NETWORK_ENV, "0")
    assert not DestinationPolicy.from_env().allow_private_network
    monkeypatch.delenv(ALLOW_PRIVATE_NETWORK_ENV)
    assert not DestinationPolicy(None).allow_private_network


# -- resolution ---------------------------------------------------------------------------------


class StubResolver:
    """Answers fixed addresses per host and counts the lookups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[tuple[str, int]]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(address, port) for address in self.answers[host]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_public_name_answering_a_private_address_is_refused() -> None:
    stub = StubResolver({"api.example.com": ["10.0.0.7"]})
    with pytest.raises(DestinationRefusedError, match=r"10\.0\.0\.7 is private"):
        await DestinationPolicy(resolver=stub).resolve("api.example.com", 443)


async def test_only_the_allowed_addresses_of_a_mixed_answer_are_returned() -> None:
    stub = StubResolver({"api.example.com": ["169.254.169.254", "93.184.216.34", "::1"]})
    assert await DestinationPolicy(resolver=stub).resolve("api.example.com", 443) == ["93.184.216.34"]


async def test_answers_are_cached_for_the_ttl_then_looked_up_again() -> None:
    clock = Clock()
    stub = StubResolver({"api.example.com": ["93.184.216.34"]})
    policy = DestinationPolicy(resolver=stub, dns_ttl=30, clock=clock)
    await policy.resolve("api.example.com", 443)
    clock.now += 29
    await policy.resolve("API.example.com.", 443)
    assert stub.calls == ["api.example.com"]
    # DNS rebinding: the name now answers a private address; after the TTL it is refused.
    stub.answers["api.example.com"] = ["127.0.0.1"]
    clock.now += 2
    with pytest.raises(DestinationRefusedError, match="loopback"):
        await policy.resolve("api.example.com", 443)
    assert stub.calls == ["api.example.com", "api.example.com"]


async def test_refusals_are_cached_too() -> None:
    stub = StubResolver({"api.example.com": ["10.0.0.1"]})
    policy = DestinationPolicy(resolver=stub)
    for _ in range(3):
        with pytest.raises(DestinationRefusedError):
            await policy.resolve("api.example.com", 443)
    assert len(stub.calls) == 1


async def test_concurrent_lookups_of_one_host_share_one_query() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow(host: str, port: int) -> list[tuple[str, int]]:
        nonlocal calls
        calls += 1
        await release.wait()
        return [("93.184.216.34", port)]

    policy = DestinationPolicy(resolver=slow)
    tasks = [asyncio.create_task(policy.resolve("api.example.com", 443)) for _ in range(5)]
    await asyncio.sleep(0)  # let every task reach the lookup
    release.set()
    assert await asyncio.gather(*tasks) == [["93.184.216.34"]] * 5
    assert calls == 1


async def test_resolution_failure_is_a_lookup_failure_and_not_cached() -> None:
    stub = StubResolver({})
    policy = DestinationPolicy(resolver=stub)
    for _ in range(2):
        # A connect error (retried), not a refusal: the policy did not say no, DNS did not answer.
        with pytest.raises(LookupFailedError, match="cannot resolve"):
            await policy.resolve("nowhere.example", 443)
    assert len(stub.calls) == 2


async def test_ip_literals_are_checked_without_a_lookup() -> None:
    stub = StubResolver({})
    with pytest.raises(DestinationRefusedError):
        await DestinationPolicy(resolver=stub).resolve("169.254.169.254", 80)
    assert await DestinationPolicy(resolver=stub).resolve("8.8.8.8", 443) == ["8.8.8.8"]
    assert stub.calls == []


async def test_default_resolver_uses_getaddrinfo() -> None:
    with pytest.raises(DestinationRefusedError, match="loopback"):
        await DestinationPolicy().resolve("localhost", 80)
    allowed = await DestinationPolicy(allow_private_network=True).resolve("localhost", 80)
    assert set(allowed) <= {"127.0.0.1", "::1"} and allowed


# -- aiohttp -----------------------------------------------------------------------------------


@pytest.fixture
async def loopback_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 that records the Host header of each request it receives."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Host", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, seen
    await runner.cleanup()


async def test_guarded_resolver_connects_to_the_checked_loopback_address_when_allowed(
    loopback_server: tuple[int, list[str]],
) -> None:
    port, seen = loopback_server
    # The name is public-looking; the stub answers loopback, which this policy allows.
    stub = StubResolver({"api.partner.test": ["127.0.0.1"]})
    policy = DestinationPolicy(allow_private_network=True, resolver=stub)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), use_dns_cache=False)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"http://api.partner.test:{port}/ping") as response,
    ):
        assert response.status == 200
        assert await response.json() == {"ok": True}
    assert seen == [f"api.partner.test:{port}"]


async def test_guarded_resolver_refuses_before_connecting(
    loopback_server: tuple[int, list[str]],
) -> None:
    port, seen = loopback_server
    stub = StubResolver({"api.partner.test": ["127.0.0.1"]})
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(DestinationPolicy(resolver=stub)), use_dns_cache=False
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(DestinationRefusedError, match="loopback"):
            await session.get(f"http://api.partner.test:{port}/ping")
    # The real name resolution path too: localhost is loopback.
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(DestinationPolicy()))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(DestinationRefusedError, match="loopback"):
            await session.get(f"http://localhost:{port}/ping")
    assert seen == []


async def test_guarded_resolver_filters_by_family() -> None:
    stub = StubResolver({"dual.example": ["93.184.216.34", "2606:4700:4700::1111"]})
    resolver = GuardedResolver(DestinationPolicy(resolver=stub))
    v4 = await resolver.resolve("dual.example", 443, socket.AF_INET)
    assert [r["host"] for r in v4] == ["93.184.216.34"]
    both = await resolver.resolve("dual.example", 443, socket.AF_UNSPEC)
    assert [(r["host"], r["family"], r["port"]) for r in both] == [
        ("93.184.216.34", socket.AF_INET, 443),
        ("2606:4700:4700::1111", socket.AF_INET6, 443),
    ]
    await resolver.close()


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Authorization",
        "Proxy-Anything",
        "proxy-connection",
    ],
)
def test_transport_headers_cannot_be_set(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be set by an action"):
        check_header(name, "x")


@pytest.mark.parametrize(
    ("value", "what"),
    [("a\r\nX-Injected: 1", "CR"), ("a\nb", "LF"), ("a\x00b", "NUL"), ("a\x7fb", "control")],
)
def test_header_values_with_control_characters_are_refused(value: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        check_header("X-Custom", value)


@pytest.mark.parametrize("name", ["", "X Custom", "X-Custom:", "Bad\r\nName", "é", "(x)"])
def test_invalid_field_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid HTTP field name"):
        check_header(name, "v")


def test_ordinary_headers_pass() -> None:
    check_header("X-Request-Id", "r-1")
    check_header("Authorization", "Bearer abc.def")
    check_header("x-api-version", "2\tnext")  # horizontal tab is allowed in a value
    check_header("Accept", "application/json")
    assert "host" in FORBIDDEN_HEADERS and "transfer-encoding" in FORBIDDEN_HEADERS


@pytest.mark.parametrize("ip", ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"])
def test_the_cloud_metadata_address_is_refused_even_on_private_networks(ip):
    policy = DestinationPolicy(allow_private_network=True)
    with pytest.raises(DestinationRefusedError, match="cloud metadata"):
        policy.check_address(ip)
    host = f"[{ip}]" if ":" in ip else ip
    with pytest.raises(DestinationRefusedError, match="cloud metadata"):
        policy.check_url(f"http://{host}/latest/meta-data/")
    policy.check_address("127.0.0.1")  # other private addresses stay allowed
    policy.check_address("169.254.1.1")


# Every metadata or credential endpoint a major cloud documents (sources in guard.py).
METADATA_ENDPOINTS = {
    "AWS IMDS": "169.254.169.254",
    "AWS IMDS IPv6": "fd00:ec2::254",
    "AWS ECS task credentials": "169.254.170.2",
    "AWS EKS Pod Identity": "169.254.170.23",
    "AWS EKS Pod Identity IPv6": "fd00:ec2::23",
    "Azure WireServer (a public address)": "168.63.129.16",
    "Alibaba Cloud": "100.100.100.200",
    "Oracle Cloud@Customer": "192.0.0.192",
    "OpenStack IPv6": "fe80::a9fe:a9fe",
    "OpenStack IPv6 with a zone": "fe80::a9fe:a9fe%2",
    "IPv4-mapped ECS": "::ffff:169.254.170.2",
    "NAT64 of Alibaba": "64:ff9b::100.100.100.200",
}


@pytest.mark.parametrize("allow_private_network", [False, True])
@pytest.mark.parametrize("ip", METADATA_ENDPOINTS.values(), ids=METADATA_ENDPOINTS.keys())
def test_every_documented_metadata_endpoint_is_refused_even_on_private_networks(ip, allow_private_network):
    policy = DestinationPolicy(allow_private_network=allow_private_network)
    with pytest.raises(DestinationRefusedError, match="cloud metadata"):
        policy.check_address(ip)


def test_addresses_next_to_the_metadata_endpoints_stay_allowed_on_private_networks():
    policy = DestinationPolicy(allow_private_network=True)
    for ip in ("169.254.170.3", "100.100.100.201", "fd00:ec2::255", "fe80::a9fe:a9ff"):
        policy.check_address(ip)
    DestinationPolicy().check_address("168.63.129.17")  # public, beside Azure's WireServer
