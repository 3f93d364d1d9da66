"""How the client authenticates to one target (docs/targets.md#authentication).

:class:`TargetAuth` holds one target's credentials: none, a static bearer token, HTTP basic,
extra headers, mutual TLS (client certificate + key, CA bundle) and/or SMART Backend Services
(:class:`SmartConfig`; the tokens themselves come from ``client.smart_tokens``). Everything here
is checked when the target is configured, so a bad key or an expired certificate stops the
command before anything is read or written; each error names the setting to fix.

A signing key is a PEM private key (``fhir-iastm keys generate`` writes one; its ``kid`` is the
RFC 7638 thumbprint of the public key unless ``IASTM_FHIR_SMART_KID`` names another) or a JSON
private JWK / JWK set, whose ``kid`` is required.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_iastm.errors import ConfigError
from fhir_iastm.smart.assertion import SIGNING_ALGS, public_jwks

#: RFC 7638 §3.2: the members of a public key's thumbprint, per key type.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


@dataclass(frozen=True)
class SmartConfig:
    """A SMART Backend Services client of one target: who it is, its key, which scopes."""

    client_id: str
    private_jwk: Mapping[str, Any] = field(repr=False)
    #: ``push``, ``pull``, ``profiles``, ``clean`` or ``bulk``: the narrowest scopes that use
    #: needs (``smart.scopes``; ``bulk``: the ``scope`` given).
    purpose: str = "push"
    #: Explicit scope text instead of the purpose's (still checked against the purpose).
    scope: str | None = None
    v1: bool = False
    #: The token URL instead of the one discovery finds.
    token_url: str | None = None

    @property
    def alg(self) -> str:
        return str(self.private_jwk["alg"])

    @property
    def kid(self) -> str:
        return str(self.private_jwk["kid"])


@dataclass(frozen=True)
class TargetAuth:
    """The credentials of one target; several may combine (mTLS with a SMART token)."""

    token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    smart: SmartConfig | None = None

    def __post_init__(self) -> None:
        if self.token and (self.basic or self.smart):
            raise ConfigError("IASTM_FHIR_TOKEN: give a static token, basic credentials or a "
                              "SMART client, not several")
        if self.basic and self.smart:
            raise ConfigError("IASTM_FHIR_BASIC_AUTH: basic credentials and a SMART client "
                              "exclude each other")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigError("IASTM_FHIR_CLIENT_CERT and IASTM_FHIR_CLIENT_KEY go together")
        if self.client_cert is not None:
            check_certificate(self.client_cert)

    @property
    def kind(self) -> str:
        """``smart``, ``bearer``, ``basic``, ``headers`` or ``none`` (mTLS is orthogonal)."""
        if self.smart:
            return "smart"
        if self.token:
            return "bearer"
        if self.basic:
            return "basic"
        return "headers" if self.headers else "none"

    def configure(self, session: requests.Session) -> None:
        """Put basic credentials on a session (the TLS side goes with each request)."""
        if self.basic is not None:
            session.auth = self.basic

    def tls(self) -> dict[str, Any]:
        """``requests`` keyword arguments of the TLS side: ``cert`` (client certificate, key) and
        ``verify`` (the CA bundle). Given per request, because a session's own ``verify`` loses
        to ``REQUESTS_CA_BUNDLE`` in the environment."""
        kwargs: dict[str, Any] = {}
        if self.client_cert is not None and self.client_key is not None:
            kwargs["cert"] = (str(self.client_cert), str(self.client_key))
        if self.ca_bundle is not None:
            kwargs["verify"] = str(self.ca_bundle)
        return kwargs

    def static_headers(self) -> dict[str, str]:
        """Extra headers and the static bearer token (never logged)."""
        headers = dict(self.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def check_certificate(path: Path, *, now: datetime | None = None) -> None:
    """ConfigError unless ``path`` holds a PEM certificate valid now."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"IASTM_FHIR_CLIENT_CERT: not a PEM certificate ({exc})") from exc
    moment = now or datetime.now(UTC)
    if cert.not_valid_after_utc <= moment:
        raise ConfigError(f"IASTM_FHIR_CLIENT_CERT: the certificate expired on "
                          f"{cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > moment:
        raise ConfigError(f"IASTM_FHIR_CLIENT_CERT: the certificate is not valid before "
                          f"{cert.not_valid_before_utc.isoformat()}")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a (public or private) RSA or EC JWK."""
    members = _THUMBPRINT_MEMBERS[str(jwk["kty"])]
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def jwk_of_pem(pem: bytes, *, kid: str | None = None) -> dict[str, Any]:
    """The private JWK (with ``kid`` and ``alg``) of a PEM RSA or EC P-384 private key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"IASTM_FHIR_SMART_KEY_FILE: not an unencrypted PEM private key "
                          f"({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS384"
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)  # type: ignore[attr-defined]
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        alg = "ES384"
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)  # type: ignore[attr-defined]
    else:
        raise ConfigError("IASTM_FHIR_SMART_KEY_FILE: the key is neither RSA nor EC P-384 "
                          f"(SMART Backend Services sign with {' or '.join(SIGNING_ALGS)})")
    return {**jwk, "kid": kid or thumbprint(jwk), "alg": alg}


def jwk_of_json(text: str, *, kid: str | None = None) -> dict[str, Any]:
    """The private JWK of a JSON JWK or JWK set (the one named ``kid``, else the only one)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"IASTM_FHIR_SMART_KEY_FILE: not JSON ({exc.msg})") from exc
    keys = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
    private = [k for k in keys or [] if isinstance(k, dict) and "d" in k]
    if kid is not None:
        private = [k for k in private if k.get("kid") == kid]
    if len(private) != 1:
        raise ConfigError("IASTM_FHIR_SMART_KEY_FILE: expected exactly one private key"
                          + (f" with kid '{kid}'" if kid else "") + f", found {len(private)}")
    jwk = dict(private[0])
    if not jwk.get("kid"):
        raise ConfigError("IASTM_FHIR_SMART_KEY_FILE: the key has no 'kid' (the server finds "
                          "the public key to check our signature by it)")
    return checked_alg(jwk)


def checked_alg(jwk: dict[str, Any]) -> dict[str, Any]:
    """``jwk`` with its ``alg`` (RS384 for RSA, ES384 for EC P-384), or ConfigError."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if alg is not None and alg not in SIGNING_ALGS:
        raise ConfigError(f"IASTM_FHIR_SMART_KEY_FILE: alg '{alg}' is not allowed; SMART Backend "
                          f"Services sign with {' or '.join(SIGNING_ALGS)}")
    if kty == "RSA" and alg in (None, "RS384"):
        return {**jwk, "alg": "RS384"}
    if kty == "EC" and jwk.get("crv") == "P-384" and alg in (None, "ES384"):
        return {**jwk, "alg": "ES384"}
    curve = f" on {jwk['crv']}" if jwk.get("crv") else ""
    raise ConfigError(f"IASTM_FHIR_SMART_KEY_FILE: an {kty} key{curve} cannot sign "
                      f"{alg or 'RS384 or ES384'}")


def generate_signing_key(alg: str = "ES384") -> tuple[bytes, dict[str, Any]]:
    """A new private key (PKCS#8 PEM) and its public JWK (``kid`` = RFC 7638 thumbprint,
    ``alg``, ``use`` sig) for ``alg`` RS384 (RSA 3072) or ES384 (EC P-384)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    elif alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ValueError(f"alg must be one of {', '.join(SIGNING_ALGS)}")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private = jwk_of_pem(pem)
    public = public_jwks({"keys": [private]})["keys"][0]
    return pem, {**public, "use": "sig", "key_ops": ["verify"]}


def load_signing_key(path: Path, *, kid: str | None = None) -> dict[str, Any]:
    """The private JWK of a key file (PEM, JWK or JWK set), with ``kid`` and ``alg``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"IASTM_FHIR_SMART_KEY_FILE: cannot read ({exc.strerror})") from exc
    if data.lstrip().startswith(b"-----BEGIN"):
        return jwk_of_pem(data, kid=kid)
    return jwk_of_json(data.decode("utf-8", "replace"), kid=kid)


__all__ = ["SmartConfig", "TargetAuth", "check_certificate", "checked_alg",
           "generate_signing_key", "jwk_of_json", "jwk_of_pem", "load_signing_key", "thumbprint"]
