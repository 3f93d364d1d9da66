"""The SMART Backend Services use cases: client registration, the token endpoint, token checks.

The API's ``/auth/token`` view and the facade's bearer check call :class:`Authorizer`; the CLI's
``clients`` commands call its registration methods. It joins the pure ``smart`` package (scopes,
assertions, access tokens) with the store (clients, replay store, signing key) and the JWKS
fetcher. docs/smart-bulk.md describes the protocol as implemented.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from fhir_iastm.client.jwks import JwksCache
from fhir_iastm.smart.assertion import (
    ASSERTION_TYPE,
    RegisteredClient,
    TokenError,
    invalid_client,
    load_jwks,
    verify_assertion,
)
from fhir_iastm.smart.scopes import ScopeError, grant, parse_scopes, scope_text
from fhir_iastm.smart.tokens import (
    ACCESS_TOKEN_LIFETIME,
    AccessToken,
    AccessTokenError,
    SigningKey,
    issue_access_token,
    new_signing_key,
    verify_access_token,
)
from fhir_iastm.storage import AuthStore, ClientRow, Store

FORM = "application/x-www-form-urlencoded"
GRANT_TYPE = "client_credentials"


def token_url_of(fhir_base: str) -> str:
    """The token endpoint beside a FHIR base ``…/fhir``: ``…/auth/token``."""
    return fhir_base.rstrip("/").removesuffix("/fhir") + "/auth/token"


def _registered(row: ClientRow) -> RegisteredClient:
    return RegisteredClient(row.client_id, row.enabled, row.jwks_url, row.scope, row.jwks)


def _form_error(form: Mapping[str, str], content_type: str) -> TokenError | None:
    if content_type.split(";")[0].strip().lower() != FORM:
        return TokenError("invalid_request", f"the token request must be {FORM}")
    grant_type = form.get("grant_type")
    if not grant_type:
        return TokenError("invalid_request", "grant_type is required")
    if grant_type != GRANT_TYPE:
        return TokenError("unsupported_grant_type",
                          f"grant_type '{grant_type[:40]}' is not supported; use {GRANT_TYPE}")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    if not form.get("client_assertion"):
        return TokenError("invalid_request", "client_assertion is required")
    if not form.get("scope", "").strip():
        return TokenError("invalid_request", "scope is required")
    return None


class Authorizer:
    """Registration, tokens and token checks over one store."""

    def __init__(self, store: Store, *, key_file: Path | None = None,
                 jwks: JwksCache | None = None, clock: Callable[[], float] = time.time) -> None:
        self.auth = AuthStore(store)
        self.key_file = key_file
        self.jwks = jwks or JwksCache()
        self.clock = clock

    @cached_property
    def key(self) -> SigningKey:
        """Our signing key: ``IASTM_SMART_KEY_FILE``, else the one kept in the database."""
        if self.key_file is not None:
            pem = self.key_file.read_bytes()
            return SigningKey("file-" + hashlib.sha256(pem).hexdigest()[:16], pem)
        fresh = new_signing_key()
        kid, text = self.auth.signing_key((fresh.kid, fresh.pem.decode()))
        return SigningKey(kid, text.encode())

    # -- registration (the CLI) -------------------------------------------------------------------
    def add_client(self, name: str, scope: str, *, jwks_url: str | None = None,
                   jwks_text: str | None = None) -> ClientRow:
        """Register a client; ValueError naming what is wrong (scope, JWK set, URL)."""
        try:
            parse_scopes(scope)
        except ScopeError as exc:
            raise ValueError(str(exc)) from exc
        if not scope.strip():
            raise ValueError("--scope is required (e.g. 'system/*.rs')")
        jwks = load_jwks(jwks_text) if jwks_text is not None else None
        return self.auth.add_client(name, " ".join(scope.split()), jwks_url=jwks_url, jwks=jwks)

    def list_clients(self) -> list[ClientRow]:
        """Every registered client."""
        return self.auth.list_clients()

    def disable_client(self, client_id: str) -> bool:
        """Disable a client (its tokens stop working at once); False when unknown."""
        return self.auth.disable_client(client_id)

    # -- the token endpoint -----------------------------------------------------------------------
    def _keys(self, client: RegisteredClient, fresh: bool) -> Mapping[str, Any]:
        if client.jwks_url:
            return self.jwks.get(client.jwks_url, fresh)
        return client.jwks or {"keys": []}

    def _client(self, client_id: str) -> RegisteredClient | None:
        row = self.auth.get_client(client_id[:64])
        return None if row is None or row.client_id != client_id else _registered(row)

    def token(self, form: Mapping[str, str], content_type: str, fhir_base: str) -> dict[str, Any]:
        """The token response for a client-credentials request, or TokenError (RFC 6749 §5.2)."""
        problem = _form_error(form, content_type)
        if problem is not None:
            raise problem
        token_url = token_url_of(fhir_base)
        now = int(self.clock())
        seen: dict[str, RegisteredClient] = {}

        def client(client_id: str) -> RegisteredClient | None:
            found = self._client(client_id)
            if found is not None:
                seen[client_id] = found
            return found

        claims = verify_assertion(form["client_assertion"], token_url=token_url, now=now,
                                  client=client, keys=self._keys)
        expires = datetime.fromtimestamp(claims.exp, UTC)
        if not self.auth.remember_jti(claims.client_id, claims.jti, expires):
            raise invalid_client("client_assertion 'jti' was already used")
        try:
            requested = parse_scopes(form["scope"])
        except ScopeError as exc:
            raise TokenError("invalid_scope", str(exc)) from exc
        granted = grant(requested, parse_scopes(seen[claims.client_id].scope))
        if not granted:
            raise TokenError("invalid_scope", "none of the requested scopes is registered for "
                             "this client")
        scope = scope_text(granted)
        token = issue_access_token(self.key, client_id=claims.client_id, scope=scope,
                                   issuer=token_url, audience=fhir_base, now=now)
        return {"access_token": token, "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME, "scope": scope}

    # -- the facade's check -----------------------------------------------------------------------
    def check(self, bearer: str, fhir_base: str) -> AccessToken:
        """The verified access token of an enabled client, or AccessTokenError."""
        token = verify_access_token(bearer, self.key, issuer=token_url_of(fhir_base),
                                    audience=fhir_base, now=int(self.clock()))
        row = self.auth.get_client(token.client_id)
        if row is None or not row.enabled:
            raise AccessTokenError("the client of this access token is disabled")
        return token


__all__ = ["FORM", "GRANT_TYPE", "Authorizer", "token_url_of"]
