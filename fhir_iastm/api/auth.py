"""bearer-token scopes from ``IASTM_API_TOKENS`` (``token:scope[+scope],…``).

With no tokens configured the service is open (local use). Otherwise every endpoint but
``/healthz`` and ``/fhir/metadata`` needs a token: reads need scope ``read``, writes ``write``.
Missing or unknown token → 401; a known token without the scope → 403 (both OperationOutcomes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from flask import Flask, current_app, g, request
from werkzeug.exceptions import Forbidden, Unauthorized

OPEN_PATHS = frozenset({"/healthz", "/fhir/metadata"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _required_scope() -> str:
    # $validate is a read-only operation even though it is a POST.
    if request.method in _READ_METHODS or request.path.endswith("/$validate"):
        return "read"
    return "write"


def _match(presented: str, tokens: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    for token, scopes in tokens.items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            return scopes
    return None


def _check() -> None:
    tokens = current_app.extensions["fhir_iastm"].settings.api_tokens
    if not tokens or request.path in OPEN_PATHS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise Unauthorized("a bearer token is required")
    scopes = _match(presented.strip(), tokens)
    if scopes is None:
        raise Unauthorized("unknown bearer token")
    # The audit log names the caller by a short digest, never by the token itself.
    g.actor = "token:" + hashlib.sha256(presented.encode()).hexdigest()[:12]
    scope = _required_scope()
    if scope not in scopes:
        raise Forbidden(f"this token lacks the '{scope}' scope")


def install_auth(app: Flask) -> None:
    """Check bearer tokens before every request."""
    app.before_request(_check)


__all__ = ["OPEN_PATHS", "install_auth"]
