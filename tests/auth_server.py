"""A real OAuth2-style token server on loopback for the auth tests, and a throwaway PKI.

`TokenServer` (aiohttp) issues tokens for: client credentials (secret in the header or the
body), the password grant of reference.md §3 (Epsilon), a JWT client assertion whose RS256
signature it verifies with the client's public key (joserfc, authlib's JOSE), the login example
(`{"token": ..., "expiryDuration": 5}`), a GET token, a JSON-body token; and guards a protected
resource that accepts only tokens it issued and has not revoked. It counts every token request.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey

from actionrt.auth.context import AuthContext

CLIENT_ID = "journey-client"
CLIENT_SECRET = "client-s3cret"
EPSILON_CLIENT = ("my-client-id", "my-client-secret")
EPSILON_USER = ("user", "pass")
LOGIN = {"secret": "login-s3cret", "username": "ada", "x-retailer": "retail-1"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# -- a throwaway PKI ------------------------------------------------------------------------


@dataclass
class Pki:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as files."""

    directory: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_pem: str
    client_cert_pem: str
    client_public_pem: bytes


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def make_pki(directory: Path, *, client_key_password: bytes | None = None) -> Pki:
    """Generate the PKI into `directory` (a few hundred ms: three RSA keys)."""
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("actionrt test CA", ca_key, "actionrt test CA", ca_key, ca=True)
    server = _cert(
        "localhost",
        server_key,
        "actionrt test CA",
        ca_key,
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client = _cert(CLIENT_ID, client_key, "actionrt test CA", ca_key)
    files = {
        "ca.pem": _pem(ca),
        "server.pem": _pem(server),
        "server.key": _key_pem(server_key),
        "client.pem": _pem(client),
        "client.key": _key_pem(client_key, client_key_password),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(
        directory=directory,
        ca_file=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_key_pem=_key_pem(client_key).decode(),
        client_cert_pem=files["client.pem"].decode(),
        client_public_pem=client_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def server_ssl_context(pki: Pki, *, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca_file)
    return context


# -- the token server -----------------------------------------------------------------------


@dataclass
class TokenServer:
    """State of the running server; tests read the counts and flip the failure switches."""

    public_key: bytes | None = None  # verifies client assertions
    audience: str = ""
    expires_in: int = 3600
    fail_status: int | None = None  # answer every token request with this status
    requests: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    resource_calls: int = 0
    base_url: str = ""

    @property
    def token_requests(self) -> int:
        return len(self.requests)

    def _issue(self, prefix: str) -> str:
        token = f"{prefix}-{len(self.issued) + 1}"
        self.issued.append(token)
        return token

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        record: dict[str, Any] = {
            "path": request.path,
            "method": request.method,
            "headers": dict(request.headers),
            "query": dict(request.query),
            "raw": raw,
        }
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            record["form"] = dict((await request.post()).items())
        elif content_type.startswith("application/json"):
            record["json"] = json.loads(raw)
        self.requests.append(record)
        return record

    def _failure(self) -> web.Response | None:
        if self.fail_status is None:
            return None
        return web.json_response({"error": "temporarily_unavailable"}, status=self.fail_status)

    @staticmethod
    def _basic(record: dict[str, Any]) -> tuple[str, str] | None:
        header = record["headers"].get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    async def oauth_token(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        form = record.get("form", {})
        grant = form.get("grant_type")
        if grant == "client_credentials" and "client_assertion" in form:
            return self._assertion_grant(form)
        if grant == "client_credentials":
            credentials = self._basic(record) or (form.get("client_id"), form.get("client_secret"))
            if credentials != (CLIENT_ID, CLIENT_SECRET):
                return web.json_response({"error": "invalid_client"}, status=401)
            body = {
                "access_token": self._issue("cc"),
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": form.get("scope", ""),
            }
            return web.json_response(body)
        if grant == "password":
            if self._basic(record) != EPSILON_CLIENT:
                return web.json_response({"error": "invalid_client"}, status=401)
            if (form.get("username"), form.get("password")) != EPSILON_USER:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(
                {"access_token": self._issue("pw"), "token_type": "bearer", "expires_in": 300}
            )
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    def _assertion_grant(self, form: dict[str, Any]) -> web.Response:
        if form.get("client_assertion_type") != ASSERTION_TYPE or self.public_key is None:
            return web.json_response({"error": "invalid_client"}, status=401)
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": CLIENT_ID},
            sub={"essential": True, "value": CLIENT_ID},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            token = jwt.decode(
                form["client_assertion"], RSAKey.import_key(self.public_key), algorithms=["RS256"]
            )
            registry.validate(token.claims)
        except Exception as exc:  # any verification failure is the client's fault
            return web.json_response(
                {"error": "invalid_client", "error_description": type(exc).__name__}, status=401
            )
        claims = token.claims
        self.assertions.append({"header": dict(token.header), "claims": dict(claims)})
        return web.json_response(
            {"access_token": self._issue("jwt"), "token_type": "Bearer", "expires_in": 3600}
        )

    async def login(self, request: web.Request) -> web.Response:
        """The login example of reference.md §3: form secret + username, header x-retailer."""
        record = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        form = record.get("form", {})
        if (
            record["headers"].get("x-retailer") != LOGIN["x-retailer"]
            or form.get("secret") != LOGIN["secret"]
            or form.get("username") != LOGIN["username"]
        ):
            return web.json_response({"error": "bad login"}, status=403)
        return web.json_response({"token": self._issue("login"), "expiryDuration": 5})

    async def get_token(self, request: web.Request) -> web.Response:
        """A GET token endpoint answering a bare token (tokenInResponse: response)."""
        record = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        if record["headers"].get("x-api-key") != CLIENT_SECRET:
            return web.Response(status=401)
        return web.Response(text=self._issue("get"), content_type="text/plain")

    async def json_token(self, request: web.Request) -> web.Response:
        """A JSON-body token endpoint answering a nested token and an absolute expiry."""
        record = await self._record(request)
        if (failure := self._failure()) is not None:
            return failure
        body = record.get("json", {})
        if body.get("auth", {}).get("credentials", {}).get("secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"data": [{"token": self._issue("json"), "expires": {"in": self.expires_in}}]}
        )

    async def resource(self, request: web.Request) -> web.Response:
        """A protected resource: only issued, unrevoked tokens (bearer or x-auth-token)."""
        self.resource_calls += 1
        header = request.headers.get("Authorization", "")
        token = (
            header.removeprefix("Bearer ")
            if header.startswith("Bearer ")
            else (request.headers.get("x-auth-token") or request.query.get("access_token", ""))
        )
        if token not in self.issued or token in self.revoked:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"ok": True, "token": token})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/token", self.oauth_token)
        app.router.add_post("/v2/user/login", self.login)
        app.router.add_get("/token", self.get_token)
        app.router.add_post("/json-token", self.json_token)
        app.router.add_route("*", "/resource", self.resource)
        return app


class RunningServer:
    """An aiohttp app served on 127.0.0.1, port chosen by the OS."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._ssl = ssl_context
        self.port = 0

    async def start(self) -> RunningServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()


# -- fixtures (import them into a test module by name) ----------------------------------------


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    """The token server on http://127.0.0.1:<port>."""
    state = TokenServer()
    running = await RunningServer(state.app()).start()
    state.base_url = f"http://127.0.0.1:{running.port}"
    yield state
    await running.stop()


@pytest.fixture
async def auth_context() -> AsyncIterator[AuthContext]:
    """A context as a Runtime builds it, loopback allowed (the destination policy still runs)."""
    context = AuthContext(allow_private_network=True)
    yield context
    await context.aclose()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
