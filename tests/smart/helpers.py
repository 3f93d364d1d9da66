"""Shared by the SMART and bulk tests: register a client, sign an assertion, get a token."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from fhir_iastm.smart.assertion import ASSERTION_TYPE, sign_assertion

DATA = Path(__file__).resolve().parent.parent / "data" / "smart"
TOKEN_URL = "http://localhost/auth/token"


def key(name: str) -> dict[str, Any]:
    """A key of the specification's example key sets (``RS384.private`` …)."""
    return json.loads((DATA / f"{name}.json").read_text())["keys"][0]


def public_text(alg: str) -> str:
    return (DATA / f"{alg}.public.json").read_text()


def register(app: Any, scope: str = "system/*.rs", alg: str = "ES384") -> str:
    """Register a client holding the example public key of ``alg``; its client_id."""
    row = app.extensions["fhir_iastm"].authorizer.add_client(
        "test client", scope, jwks_text=public_text(alg))
    return str(row.client_id)


def form(client_id: str, *, alg: str = "ES384", scope: str = "system/*.rs",
         **overrides: Any) -> dict[str, str]:
    assertion = sign_assertion(key(f"{alg}.private"), client_id=client_id, token_url=TOKEN_URL,
                               now=int(time.time()), jti=uuid.uuid4().hex)
    body = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": scope}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def token(client: FlaskClient, client_id: str, scope: str = "system/*.rs",
          alg: str = "ES384") -> str:
    response = client.post("/auth/token", data=form(client_id, alg=alg, scope=scope))
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access_token"])


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}
