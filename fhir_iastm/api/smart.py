"""SMART Backend Services endpoints — discovery, the token endpoint, our JWKS.

``GET /fhir/.well-known/smart-configuration`` (SMART App Launch 2.2.0 conformance.html),
``POST /auth/token`` (client credentials with a ``private_key_jwt`` assertion;
backend-services.md), ``GET /auth/jwks`` (the public key our access tokens are signed with),
``GET /.well-known/jwks.json`` (the public keys of our own client, when configured).
Token errors are RFC 6749 §5.2 JSON objects, never OperationOutcomes. docs/smart-bulk.md.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, json, request

from fhir_iastm.api.fhir_http import fhir_base
from fhir_iastm.authz import GRANT_TYPE, token_url_of
from fhir_iastm.facade.params import RESOURCE_TYPES
from fhir_iastm.smart.assertion import SIGNING_ALGS, TokenError, load_jwks
from fhir_iastm.smart.tokens import public_key_jwk

bp = Blueprint("smart", __name__)
log = logging.getLogger("fhir_iastm.api")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: The scopes a client may ask for (v2 and their v1 equivalents); the facade only reads.
SCOPES = ("system/*.rs", "system/*.read",
          *(f"system/{t}.rs" for t in (*RESOURCE_TYPES, "Group")))


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
          ) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers=headers)


def smart_configuration(base: str) -> dict[str, Any]:
    """The discovery document of a FHIR base (backend services only: no authorization
    endpoint, no launch capabilities; docs/smart-bulk.md says why)."""
    root = token_url_of(base).removesuffix("/token")
    return {
        "token_endpoint": token_url_of(base),
        "jwks_uri": root + "/jwks",
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGS),
        "scopes_supported": list(SCOPES),
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    }


@bp.get("/fhir/.well-known/smart-configuration")
def discovery() -> Response:
    """SMART discovery (open, like ``metadata``)."""
    return _json(smart_configuration(fhir_base()))


@bp.post("/auth/token")
def token() -> Response:
    """The token endpoint: an access token, or an RFC 6749 §5.2 error."""
    state = current_app.extensions["fhir_iastm"]
    if not state.settings.smart_auth:
        return _json({"error": "invalid_request", "error_description": "SMART Backend Services "
                      "are not enabled on this server (IASTM_SMART_AUTH)"}, 400, _NO_STORE)
    form = {k: v for k, v in request.form.items()}
    try:
        body = state.authorizer.token(form, request.content_type or "", fhir_base())
    except TokenError as exc:
        log.info("token refused", extra={"error": exc.error})
        headers = dict(_NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
        return _json({"error": exc.error, "error_description": exc.description}, exc.status,
                     headers)
    return _json(body, 200, _NO_STORE)


@bp.get("/auth/jwks")
def jwks() -> Response:
    """Our public signing key (resource servers may verify our access tokens with it)."""
    state = current_app.extensions["fhir_iastm"]
    return _json({"keys": [public_key_jwk(state.authorizer.key)]})


@bp.get("/.well-known/jwks.json")
def client_jwks() -> Response:
    """The public keys of our own SMART client (``IASTM_CLIENT_JWKS_FILE``), for EHRs that
    fetch them from a URL; read on each request, so replacing the file rotates the keys (keep
    the old key in it until the EHR has seen the new one; docs/targets.md#key-rotation)."""
    path = current_app.extensions["fhir_iastm"].settings.client_jwks_file
    if path is None:
        return _json({"error": "not_found", "error_description": "no client JWK set is "
                      "configured (IASTM_CLIENT_JWKS_FILE)"}, 404)
    try:
        keys = load_jwks(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.error("client jwks unusable", extra={"error": type(exc).__name__})
        return _json({"error": "server_error", "error_description": "the configured client "
                      "JWK set cannot be served"}, 500)
    return _json(keys, 200, {"Cache-Control": "max-age=300"})


__all__ = ["bp", "smart_configuration"]
