"""CORE: SMART Backend Services (SMART App Launch 2.2.0) — scopes, client assertions and access
tokens; pure functions over PyJWT and cryptography (no Flask, SQL, network or clock of its own:
"now", keys and the replay check come in as arguments). The token endpoint and the facade's token
check (``api``) and the client-assertion signer of the push and bulk clients use it; registration,
key storage and the replay store live in ``storage``. See docs/smart-bulk.md.
"""

from fhir_iastm.smart.assertion import (
    ASSERTION_TYPE,
    MAX_ASSERTION_LIFETIME,
    SIGNING_ALGS,
    AssertionClaims,
    TokenError,
    public_jwks,
    sign_assertion,
    verify_assertion,
)
from fhir_iastm.smart.scopes import Scope, ScopeError, allows, grant, parse_scopes

__all__ = [
    "ASSERTION_TYPE",
    "MAX_ASSERTION_LIFETIME",
    "SIGNING_ALGS",
    "AssertionClaims",
    "Scope",
    "ScopeError",
    "TokenError",
    "allows",
    "grant",
    "parse_scopes",
    "public_jwks",
    "sign_assertion",
    "verify_assertion",
]
