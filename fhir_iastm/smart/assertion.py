"""Client assertions (RFC 7523 §2.2, §3) as SMART Backend Services profiles them.

:func:`verify_assertion` checks, in order: the header (``typ`` JWT, ``alg`` RS384 or ES384, a
``kid``), ``iss`` = ``sub`` = a registered, enabled client, ``jku`` (only the registered JWKS
URL), the key named by ``kid`` (of the algorithm's key type; ES384 on P-384), the signature,
``aud`` = the token URL exactly, ``exp`` present and at most 5 minutes ahead, and a ``jti``.
Every failure is a :class:`TokenError` carrying the RFC 6749 §5.2 error code. Replay of a ``jti``
is checked by the caller against its store (the claims carry ``jti`` and ``exp``).

:func:`sign_assertion` is the client side: the push and bulk clients sign with it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGS = ("RS384", "ES384")
#: SMART: ``exp`` no more than five minutes in the future.
MAX_ASSERTION_LIFETIME = 300
#: Clock skew tolerated on ``exp`` (both directions), seconds.
LEEWAY = 30
_KTY = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class TokenError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, ``description``, and the HTTP status to answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def invalid_client(description: str) -> TokenError:
    """``invalid_client`` (401): the client could not be authenticated."""
    return TokenError("invalid_client", description, 401)


@dataclass(frozen=True)
class RegisteredClient:
    """What the verifier needs of a registered client."""

    client_id: str
    enabled: bool
    jwks_url: str | None
    scope: str
    jwks: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AssertionClaims:
    """A verified assertion: who (``client_id``), and its ``jti`` / ``exp`` for the replay store."""

    client_id: str
    jti: str
    exp: int
    kid: str


#: (client, kid, force refresh) -> that client's JWK set as a dict ({"keys": [...]})
KeyLookup = Callable[[RegisteredClient, bool], Mapping[str, Any]]


def _header(assertion: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise invalid_client(f"client_assertion is not a signed JWT ({exc})") from exc
    if header.get("typ") != "JWT":
        raise invalid_client("client_assertion header 'typ' must be 'JWT'")
    if header.get("alg") not in SIGNING_ALGS:
        raise invalid_client(f"client_assertion header 'alg' {header.get('alg')!r} is not "
                             f"one of {', '.join(SIGNING_ALGS)}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise invalid_client("client_assertion header has no 'kid'")
    return header


def _unverified_issuer(assertion: str) -> str:
    claims = jwt.decode(assertion, options={"verify_signature": False})
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss:
        raise invalid_client("client_assertion has no 'iss'")
    if sub != iss:
        raise invalid_client("client_assertion 'sub' must equal 'iss' (the client_id)")
    return iss


def _find_key(jwks: Mapping[str, Any], kid: str, alg: str) -> jwt.PyJWK | None:
    kty, crv = _KTY[alg]
    for jwk in jwks.get("keys") or []:
        if not isinstance(jwk, Mapping) or jwk.get("kid") != kid or jwk.get("kty") != kty:
            continue
        if crv is not None and jwk.get("crv") != crv:
            continue
        if jwk.get("alg") not in (None, alg):
            continue
        public = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
        try:
            return jwt.PyJWK(public, algorithm=alg)
        except jwt.PyJWTError:
            continue
    return None


def _key(client: RegisteredClient, header: Mapping[str, Any], keys: KeyLookup) -> jwt.PyJWK:
    kid, alg = header["kid"], header["alg"]
    found = _find_key(keys(client, False), kid, alg)
    if found is None and client.jwks_url:  # the client may have rotated its keys
        found = _find_key(keys(client, True), kid, alg)
    if found is None:
        raise invalid_client(f"no {alg} key with kid '{kid}' is registered for this client")
    return found


def verify_assertion(assertion: str, *, token_url: str, now: int,
                     client: Callable[[str], RegisteredClient | None],
                     keys: KeyLookup) -> AssertionClaims:
    """Verify a client assertion for ``token_url`` at unix time ``now`` (see the module doc)."""
    header = _header(assertion)
    client_id = _unverified_issuer(assertion)
    registered = client(client_id)
    if registered is None:
        raise invalid_client("the client_id of the assertion is not registered")
    if not registered.enabled:
        raise invalid_client("this client is disabled")
    jku = header.get("jku")
    if jku is not None and jku != registered.jwks_url:
        raise invalid_client("header 'jku' is not the JWKS URL registered for this client")
    key = _key(registered, header, keys)
    try:
        claims = jwt.decode(
            assertion, key.key, algorithms=[header["alg"]], audience=token_url,
            issuer=client_id, leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_iat": False,
                     "verify_nbf": False, "verify_exp": False},  # exp: against ``now`` below
        )
    except jwt.InvalidAudienceError as exc:
        raise invalid_client(f"client_assertion 'aud' must be the token URL {token_url}") from exc
    except jwt.InvalidSignatureError as exc:
        raise invalid_client("client_assertion signature does not verify") from exc
    except jwt.PyJWTError as exc:
        raise invalid_client(f"client_assertion is not valid: {exc}") from exc
    if not isinstance(claims["exp"], int):
        raise invalid_client("client_assertion 'exp' must be a NumericDate (whole seconds)")
    if claims["exp"] < now - LEEWAY:
        raise invalid_client("client_assertion has expired ('exp' is in the past)")
    if claims["exp"] > now + MAX_ASSERTION_LIFETIME + LEEWAY:
        raise invalid_client("client_assertion 'exp' is more than 5 minutes in the future")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise invalid_client("client_assertion 'jti' must be a non-empty string")
    return AssertionClaims(client_id, claims["jti"], int(claims["exp"]), header["kid"])


def _alg_of(jwk: Mapping[str, Any]) -> str:
    if jwk.get("alg") in SIGNING_ALGS:
        return str(jwk["alg"])
    if jwk.get("kty") == "RSA":
        return "RS384"
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-384":
        return "ES384"
    raise ValueError("the private key is neither RSA nor EC P-384 (RS384 / ES384)")


def sign_assertion(private_jwk: Mapping[str, Any], *, client_id: str, token_url: str, now: int,
                   lifetime: int = MAX_ASSERTION_LIFETIME, jti: str | None = None,
                   jku: str | None = None) -> str:
    """A client assertion signed with ``private_jwk`` (RS384 or ES384, its ``kid`` in the
    header), valid ``lifetime`` seconds (at most 300) from unix time ``now``."""
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError("lifetime must be 1..300 seconds")
    if not isinstance(private_jwk.get("kid"), str) or not private_jwk["kid"]:
        raise ValueError("the signing key has no 'kid' (the server finds our public key by it)")
    alg = _alg_of(private_jwk)
    key = jwt.PyJWK(dict(private_jwk), algorithm=alg)
    header: dict[str, Any] = {"typ": "JWT", "kid": private_jwk.get("kid")}
    if jku is not None:
        header["jku"] = jku
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + lifetime,
              "jti": jti or uuid.uuid4().hex}
    return jwt.encode(claims, key.key, algorithm=alg, headers=header)


def public_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK set (private members removed)."""
    keys = [{k: v for k, v in key.items() if k not in _PRIVATE_MEMBERS}
            for key in jwks.get("keys") or []]
    for key in keys:
        if key.get("key_ops") == ["sign"]:
            key["key_ops"] = ["verify"]
    return {"keys": keys}


def load_jwks(text: str) -> dict[str, Any]:
    """A JWK set from JSON text, or ValueError naming what is wrong."""
    try:
        jwks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError("a JWK set is an object with a non-empty 'keys' array")
    for number, key in enumerate(jwks["keys"]):
        if not isinstance(key, dict) or not key.get("kid") or key.get("kty") not in ("RSA", "EC"):
            raise ValueError(f"keys[{number}] needs a 'kid' and kty 'RSA' or 'EC'")
        if _PRIVATE_MEMBERS & key.keys():
            raise ValueError(f"keys[{number}] holds private key members; register public keys")
    return jwks


__all__ = ["ASSERTION_TYPE", "LEEWAY", "MAX_ASSERTION_LIFETIME", "SIGNING_ALGS",
           "AssertionClaims", "KeyLookup", "RegisteredClient", "TokenError", "invalid_client",
           "load_jwks", "public_jwks", "sign_assertion", "verify_assertion"]
