"""Access tokens: JWTs we sign (RS384) and check on every facade request.

Claims: ``iss`` (our token URL), ``sub`` and ``client_id`` (the client), ``aud`` (our FHIR base),
``scope`` (the granted scopes), ``iat``, ``exp`` (at most 300 s later) and ``jti``; header ``typ``
``at+jwt`` (RFC 9068) and the ``kid`` of our key. No refresh tokens: a client asks again with a
new assertion.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fhir_iastm.smart.scopes import Scope, ScopeError, parse_scopes

ACCESS_TOKEN_ALG = "RS384"
#: Lifetime of an access token, seconds (the SMART recommendation is at most five minutes).
ACCESS_TOKEN_LIFETIME = 300


class AccessTokenError(Exception):
    """The bearer token is not one of our valid access tokens (401)."""


@dataclass(frozen=True)
class SigningKey:
    """Our private key (PEM) and its key id."""

    kid: str
    pem: bytes

    @cached_property
    def private(self) -> Any:
        """The loaded private key (parsed once per process)."""
        return serialization.load_pem_private_key(self.pem, password=None)


@dataclass(frozen=True)
class AccessToken:
    """A verified access token."""

    client_id: str
    scopes: tuple[Scope, ...]
    exp: int


def new_signing_key() -> SigningKey:
    """A fresh RSA 2048 key for RS384 with a random kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return SigningKey(uuid.uuid4().hex, pem)


def issue_access_token(key: SigningKey, *, client_id: str, scope: str, issuer: str,
                       audience: str, now: int,
                       lifetime: int = ACCESS_TOKEN_LIFETIME) -> str:
    """A signed access token for ``client_id`` with the granted ``scope`` text."""
    claims = {"iss": issuer, "sub": client_id, "client_id": client_id, "aud": audience,
              "scope": scope, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key.private, algorithm=ACCESS_TOKEN_ALG,  # type: ignore[arg-type]
                      headers={"typ": "at+jwt", "kid": key.kid})


def verify_access_token(token: str, key: SigningKey, *, issuer: str, audience: str,
                        now: int) -> AccessToken:
    """The client and scopes of one of our access tokens, or AccessTokenError."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != key.kid or header.get("typ") != "at+jwt":
            raise AccessTokenError("the access token was not issued by this server")
        claims: dict[str, Any] = jwt.decode(
            token, key.private.public_key(), algorithms=[ACCESS_TOKEN_ALG],  # type: ignore[arg-type]
            audience=audience, issuer=issuer,
            options={"require": ["sub", "scope", "exp"], "verify_exp": False})
    except jwt.PyJWTError as exc:
        raise AccessTokenError(f"the access token is not valid ({exc})") from exc
    if not isinstance(claims["exp"], int) or claims["exp"] <= now:
        raise AccessTokenError("the access token has expired")
    try:
        scopes = tuple(parse_scopes(str(claims["scope"])))
    except ScopeError as exc:  # pragma: no cover - we issued it
        raise AccessTokenError(str(exc)) from exc
    return AccessToken(str(claims["sub"]), scopes, claims["exp"])


def public_key_jwk(key: SigningKey) -> dict[str, Any]:
    """Our public key as a JWK (for ``jwks_uri``)."""
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(  # type: ignore[attr-defined]
        key.private.public_key(), as_dict=True)
    return {**jwk, "kid": key.kid, "alg": ACCESS_TOKEN_ALG, "use": "sig"}


__all__ = ["ACCESS_TOKEN_ALG", "ACCESS_TOKEN_LIFETIME", "AccessToken", "AccessTokenError",
           "SigningKey", "issue_access_token", "new_signing_key", "public_key_jwk",
           "verify_access_token"]
