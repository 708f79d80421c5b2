"""The `googleServiceAccount` authentication scheme: an OAuth 2.0 access token from a Google
service-account key, by the JWT bearer grant (RFC 7523) at the key's `token_uri`.

The key file's JSON comes from a secret (`{{ secrets.NAME }}`) or a file; a JWT signed RS256 with
its private key (`iss` the client email, `scope`, `aud` the token URI, `iat`, `exp` one hour
later) is exchanged for a token sent as `Authorization: Bearer`. The token is cached by the
runtime's token cache (one request per lifetime, refreshed a minute before it expires).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import Field, field_validator, model_validator

from actionrt.auth.base import AuthenticationError, AuthScheme
from actionrt.auth.context import endpoint_label
from actionrt.auth.jwt import sign_rs256
from actionrt.auth.models import AuthConfig, Text
from actionrt.auth.tokens import DEFAULT_LIFETIME, FetchedToken, TokenAuthenticator, usable_lifetime
from actionrt.secrets import SECRET_REF

if TYPE_CHECKING:
    from actionrt.auth.context import AuthContext

FIREBASE_MESSAGING_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # seconds: Google's maximum for the assertion


class GoogleServiceAccountConfig(AuthConfig):
    """`{type: googleServiceAccount, serviceAccount: "{{ secrets.NAME }}" | serviceAccountFile: path,
    scopes: [...]}`."""

    type: Literal["googleServiceAccount"]
    serviceAccount: str | None = Field(default=None, repr=False)
    serviceAccountFile: Text | None = None
    scopes: list[Text] = Field(default_factory=lambda: [FIREBASE_MESSAGING_SCOPE], min_length=1)

    @field_validator("serviceAccount")
    @classmethod
    def _a_secret_reference(cls, value: str | None) -> str | None:
        # The key file holds a private key: it never sits in an action file in clear.
        if value is not None and not SECRET_REF.fullmatch(value.strip()):
            raise ValueError("must be a {{ secrets.NAME }} reference to the key file's JSON")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> GoogleServiceAccountConfig:
        if (self.serviceAccount is None) == (self.serviceAccountFile is None):
            raise ValueError("give exactly one of serviceAccount and serviceAccountFile")
        return self


def signed_assertion(account: dict[str, str], scopes: list[str], now: int) -> str:
    """The RS256-signed JWT of the JWT bearer grant for `account` (a parsed key file)."""
    claims = {
        "iss": account["client_email"],
        "scope": " ".join(scopes),
        "aud": account["token_uri"],
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    try:
        key = serialization.load_pem_private_key(account["private_key"].encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise AuthenticationError("service account: private_key is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthenticationError("service account: private_key is not an RSA key")
    return sign_rs256(key, claims, kid=account["private_key_id"])


def parse_key_file(text: str) -> dict[str, str]:
    """The fields of a service-account key file the grant needs; AuthenticationError naming the
    missing field (never a value)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise AuthenticationError("service account: the key file is not JSON") from None
    if not isinstance(data, dict):
        raise AuthenticationError("service account: the key file is not a JSON object")
    account: dict[str, str] = {}
    for field in ("client_email", "private_key", "private_key_id"):
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"service account: the key file has no {field}")
        account[field] = value
    token_uri = data.get("token_uri") or GOOGLE_TOKEN_URI
    if not isinstance(token_uri, str) or urlsplit(token_uri).scheme != "https":
        raise AuthenticationError("service account: token_uri must be an https URL")
    account["token_uri"] = token_uri
    return account


class GoogleServiceAccountAuthenticator(TokenAuthenticator):
    """Bearer tokens from a Google service-account key (JWT bearer grant)."""

    scheme = "googleServiceAccount"

    def __init__(self, config: GoogleServiceAccountConfig, context: AuthContext) -> None:
        super().__init__(context, injection="bearer", endpoint_label="the service account's token_uri")
        self._scopes = list(config.scopes)
        if config.serviceAccount is not None:
            self._read = context.secrets.compile(config.serviceAccount)
        else:
            path = Path(config.serviceAccountFile or "")
            self._read = lambda: _read_file(path)

    def _account(self) -> dict[str, str]:
        account = parse_key_file(self._read())
        self.endpoint_label = endpoint_label(account["token_uri"])
        return account

    def credentials(self) -> Any:
        account = self._account()
        return {
            "client_email": account["client_email"],
            "private_key_id": account["private_key_id"],
            # A digest: the key itself must not travel further than the signing.
            "key": hashlib.sha256(account["private_key"].encode("utf-8")).hexdigest(),
            "token_uri": account["token_uri"],
            "scopes": self._scopes,
        }

    async def fetch(self) -> FetchedToken:
        account = self._account()
        assertion = signed_assertion(account, self._scopes, int(self._context.wall_clock()))
        body = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": assertion})
        response = await self._context.token_request(
            "POST",
            account["token_uri"],
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            content=body.encode("ascii"),
            label=self.endpoint_label,
        )
        data = response.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n\x00"):
            raise AuthenticationError(
                f"token endpoint {self.endpoint_label} answered {response.status} without an access_token",
                status=response.status,
            )
        expires_in = data.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            return FetchedToken(token, usable_lifetime(float(expires_in), from_response=True))
        return FetchedToken(token, DEFAULT_LIFETIME - 60.0)


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthenticationError(f"service account: cannot read {path.name} ({exc.strerror})") from None


def build(config: Any, context: AuthContext) -> GoogleServiceAccountAuthenticator:
    return GoogleServiceAccountAuthenticator(config, context)


SCHEME = AuthScheme(
    "googleServiceAccount",
    GoogleServiceAccountConfig,
    build,
    "OAuth 2.0 bearer token from a Google service-account key (JWT bearer grant).",
)
