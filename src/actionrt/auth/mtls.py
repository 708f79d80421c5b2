"""Client certificates (mutual TLS): the SSL context an action's endpoint is called with when
the action carries `endpoint.clientCertificate: {certFile, keyFile, password?}`."""

from __future__ import annotations

import ssl

from actionrt.errors import ActionrtError


class ClientCertificateError(ActionrtError):
    """The client certificate or key cannot be loaded. Names the files, never the password."""


def client_ssl_context(
    cert_file: str,
    key_file: str,
    password: str | None = None,
    ca_file: str | None = None,
) -> ssl.SSLContext:
    """A client-side context presenting `cert_file`/`key_file` (PEM) when the server asks.

    Server certificates are verified (against `ca_file` when given, else the system store);
    TLS 1.2 is the minimum and TLS 1.3 is preferred. Built once per action at load, never
    per call.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # Without a password, an encrypted key must fail, not make OpenSSL prompt on a tty.
        context.load_cert_chain(cert_file, key_file, password=password or _no_password)
    except FileNotFoundError as exc:
        raise ClientCertificateError(f"client certificate: cannot read {exc.filename or cert_file}") from None
    except (ssl.SSLError, OSError):
        raise ClientCertificateError(
            f"client certificate: {cert_file} / {key_file} is not a matching PEM certificate "
            "and key (or the key's password is wrong)"
        ) from None
    return context


def _no_password() -> str:
    return ""
