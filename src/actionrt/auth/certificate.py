"""Certificate credential (`subType: certificateCredential`): the token call carries a JWT
client assertion (RFC 7523) signed RS256 with the configured private key, instead of a secret.

Header: alg RS256, typ JWT, x5t = base64url(SHA-1 of the certificate's DER). Claims: iss = sub =
client id, aud, iat, exp = iat + 600 s, a unique jti. A fresh assertion is signed for each token
call; the key and certificate are read at that time (so rotating the files needs no restart).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from actionrt.auth.base import AuthenticationError
from actionrt.auth.custom import CustomAuthenticator
from actionrt.auth.jwt import sign_rs256
from actionrt.auth.models import CustomAuthorizationConfig

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_client_assertion(
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    *,
    client_id: str,
    audience: str,
    now: float,
) -> str:
    """An RS256 JWT client assertion (RFC 7523 §2.2) for `client_id`, audience `audience`."""
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": str(uuid.uuid4()),
    }
    # x5t is the SHA-1 thumbprint of the certificate by definition (RFC 7515 §4.1.7).
    return sign_rs256(key, claims, x5t=b64url(certificate.fingerprint(hashes.SHA1())))


class CertificateCredentialAuthenticator(CustomAuthenticator):
    """`customAuthorization` with `subType: certificateCredential`."""

    scheme = "certificateCredential"

    def __init__(self, config: CustomAuthorizationConfig, context: AuthContext) -> None:
        super().__init__(config, context)
        secrets = context.secrets
        client_id = config.client_id
        assert client_id is not None and config.aud is not None  # the model requires them
        self._client_id = secrets.compile(client_id)
        self._audience = secrets.compile(config.aud)
        self._key_text = (
            secrets.compile(config.privateKey.get_secret_value()) if (config.privateKey is not None) else None
        )
        self._key_file = secrets.compile(config.privateKeyFile) if config.privateKeyFile else None
        self._key_password = (
            secrets.compile(config.privateKeyPassword.get_secret_value())
            if config.privateKeyPassword is not None
            else None
        )
        self._cert_text = secrets.compile(config.certificate) if config.certificate else None
        self._cert_file = secrets.compile(config.certificateFile) if config.certificateFile else None

    def credentials(self) -> Any:
        material = super().credentials()
        material["assertion"] = {
            "clientId": self._client_id(),
            "aud": self._audience(),
            "key": self._key_text() if self._key_text else f"file:{self._key_file_path()}",
            "certificate": self._cert_text() if self._cert_text else f"file:{self._cert_path()}",
        }
        return material

    def body_params(self) -> dict[str, Any]:
        params = self.configured_params() if self.config.body else {"grant_type": "client_credentials"}
        client_id = self._client_id()
        params.setdefault("client_id", client_id)
        params["client_assertion_type"] = ASSERTION_TYPE
        params["client_assertion"] = sign_client_assertion(
            self._private_key(),
            self._certificate(),
            client_id=client_id,
            audience=self._audience(),
            now=self._context.wall_clock(),
        )
        return params

    def _key_file_path(self) -> str:
        assert self._key_file is not None
        return self._key_file()

    def _cert_path(self) -> str:
        assert self._cert_file is not None
        return self._cert_file()

    def _private_key(self) -> rsa.RSAPrivateKey:
        data = (
            self._key_text().encode("utf-8")
            if self._key_text
            else self._read("privateKeyFile", self._key_file_path())
        )
        password = self._key_password().encode("utf-8") if self._key_password else None
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise AuthenticationError(
                "privateKey is not a readable PEM private key (or its password is wrong)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AuthenticationError("privateKey must be an RSA key (the assertion is RS256)")
        return key

    def _certificate(self) -> x509.Certificate:
        data = (
            self._cert_text().encode("utf-8")
            if self._cert_text
            else self._read("certificateFile", self._cert_path())
        )
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise AuthenticationError("certificate is not a readable PEM or DER certificate") from None

    @staticmethod
    def _read(field: str, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise AuthenticationError(f"{field} cannot be read ({exc.strerror})") from None
