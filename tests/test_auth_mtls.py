"""Client certificates: the context presents the certificate to a loopback TLS server that
requires one, verifies the server, and refuses bad key material with a clear message."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from auth_server import CLIENT_ID, Pki, make_pki, pki, server_ssl_context

from actionrt.auth.mtls import ClientCertificateError, client_ssl_context

__all__ = ["pki"]  # fixture, used by parameter name


@pytest.fixture
async def mtls_port(pki: Pki) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 that requires a client certificate and answers its CN."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        subject = dict(item[0] for item in peer.get("subject", ()))
        writer.write(subject.get("commonName", "-").encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        answer, "127.0.0.1", 0, ssl=server_ssl_context(pki, require_client_cert=True)
    )
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def exchange(port: int, context: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    try:
        return await reader.readline()
    finally:
        writer.close()


async def test_client_certificate_is_presented(pki: Pki, mtls_port: int) -> None:
    context = client_ssl_context(str(pki.client_cert), str(pki.client_key), ca_file=str(pki.ca_file))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert await exchange(mtls_port, context) == CLIENT_ID.encode() + b"\n"


async def test_without_a_client_certificate_the_server_refuses(pki: Pki, mtls_port: int) -> None:
    plain = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        answer = await exchange(mtls_port, plain)
    except (ssl.SSLError, ConnectionError):
        answer = b""  # refused in the handshake (TLS 1.2) or at the first read (TLS 1.3)
    assert answer == b""  # never the CN line: the server did not serve us


def test_encrypted_key_with_its_password(tmp_path: Path) -> None:
    locked = make_pki(tmp_path, client_key_password=b"k3y-pass")
    cert, key = str(locked.client_cert), str(locked.client_key)
    assert client_ssl_context(cert, key, password="k3y-pass")
    for wrong in ("nope", None):
        with pytest.raises(ClientCertificateError) as info:
            client_ssl_context(cert, key, password=wrong)
        assert "k3y-pass" not in str(info.value)
        assert "password is wrong" in str(info.value)


def test_missing_and_mismatched_files(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ClientCertificateError, match="cannot read"):
        client_ssl_context(str(tmp_path / "none.pem"), str(pki.client_key))
    with pytest.raises(ClientCertificateError, match="not a matching PEM"):
        client_ssl_context(str(pki.client_cert), str(pki.server_key))
