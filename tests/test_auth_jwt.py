"""The one RS256 JWT signer (joserfc), used by certificate credentials and service accounts."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from actionrt.auth.jwt import sign_rs256


def test_a_signed_jwt_verifies_with_the_public_key_and_keeps_its_header() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign_rs256(key, {"iss": "client", "iat": 1_800_000_000}, kid="k1")
    decoded = jwt.decode(token, RSAKey.import_key(key.public_key()), algorithms=["RS256"])
    assert decoded.header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert decoded.claims == {"iss": "client", "iat": 1_800_000_000}
