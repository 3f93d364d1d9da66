"""Who may call what — static bearer tokens, or SMART Backend Services tokens.

Static tokens (``IASTM_API_TOKENS``, ``token:scope[+scope],…``): with none configured the service
is open (local use); otherwise every endpoint but the open ones needs a token: reads need scope
``read``, writes ``write``, the AuditEvents ``admin`` (docs/audit.md).

With ``IASTM_SMART_AUTH=true`` every ``/fhir`` request (but ``metadata`` and the SMART
discovery document) needs an access token from ``/auth/token`` instead, and each interaction
needs its SMART scope (:func:`require`): read → ``r``, search → ``s``, ``$export`` → ``rs`` on
every exported type. The records API keeps the static tokens.

Missing or bad token → 401 with ``WWW-Authenticate: Bearer``; a token without the scope → 403
(both OperationOutcomes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from flask import Flask, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from fhir_iastm.smart.scopes import allows
from fhir_iastm.smart.tokens import AccessTokenError

OPEN_PATHS = frozenset({"/healthz", "/fhir/metadata", "/fhir/.well-known/smart-configuration",
                        "/auth/token", "/auth/jwks"})
CONSOLE_PREFIX = "/console/"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _required_scope() -> str:
    if request.path == "/fhir/AuditEvent" or request.path.startswith("/fhir/AuditEvent/"):
        return "admin"  # the audit trail: administrators only (docs/audit.md)
    # $validate is a read-only operation even though it is a POST.
    if request.method in _READ_METHODS or request.path.endswith("/$validate"):
        return "read"
    return "write"


def _match(presented: str, tokens: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    for token, scopes in tokens.items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            return scopes
    return None


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("a bearer token is required")
    return presented.strip()


def _check_smart() -> None:
    from fhir_iastm.api.fhir_http import fhir_base

    presented = _bearer()
    try:
        token = current_app.extensions["fhir_iastm"].authorizer.check(presented, fhir_base())
    except AccessTokenError as exc:
        raise Unauthorized(str(exc), www_authenticate=WWWAuthenticate(
            "bearer", {"error": "invalid_token"})) from exc
    g.smart_token = token
    g.actor = "client:" + token.client_id[:32]


def _check() -> None:
    settings = current_app.extensions["fhir_iastm"].settings
    if request.path in OPEN_PATHS or request.path.startswith(CONSOLE_PREFIX):
        return  # the console logs in with the same tokens through its cookie (api.console_auth)
    if settings.smart_auth and request.path.startswith("/fhir/"):
        _check_smart()
        return
    tokens = settings.api_tokens
    if not tokens:
        return
    presented = _bearer()
    scopes = _match(presented, tokens)
    if scopes is None:
        raise Unauthorized("unknown bearer token")
    # The audit log names the caller by a short digest, never by the token itself.
    g.actor = "token:" + hashlib.sha256(presented.encode()).hexdigest()[:12]
    scope = _required_scope()
    if scope not in scopes:
        raise Forbidden(f"this token lacks the '{scope}' scope")


def require(resource_type: str, permissions: str) -> None:
    """403 unless the request's SMART token grants ``permissions`` (``r``, ``s``, ``rs``) on
    ``resource_type``; a no-op for static tokens (their ``read`` scope was checked already)."""
    token = g.get("smart_token")
    if token is not None and not allows(token.scopes, resource_type, permissions):
        raise Forbidden(f"the access token's scopes do not grant '{permissions}' on "
                        f"{resource_type} (e.g. system/{resource_type}.{permissions})")


def smart_client() -> str | None:
    """The client_id of the request's SMART token (None with static tokens or none)."""
    token = g.get("smart_token")
    return None if token is None else str(token.client_id)


def install_auth(app: Flask) -> None:
    """Check bearer tokens before every request."""
    app.before_request(_check)


__all__ = ["OPEN_PATHS", "install_auth", "require", "smart_client"]
