"""RS256 JWTs, signed by joserfc (authlib's JOSE library): the one signer of the client
assertions that certificate credentials and service-account keys send to token endpoints."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

__all__ = ["sign_rs256"]


def sign_rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], **header: Any) -> str:
    """The compact JWT of `claims` signed RS256 with `key`; `header` adds to `alg` and `typ`."""
    return jwt.encode({"alg": "RS256", "typ": "JWT", **header}, claims, RSAKey.import_key(key))
