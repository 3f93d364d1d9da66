"""The token endpoint, discovery and the facade's token check (SMART Backend Services), on
SQLite and PostgreSQL. The negative cases follow the reference bulk-data server's list: wrong
content type, grant type, assertion type, aud, unknown kid, bad signature, bad scope, reused jti,
expired assertion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from fhir_iastm.smart.assertion import sign_assertion
from tests.smart.helpers import TOKEN_URL, bearer, form, key, register, token

EXAMPLE = (Path(__file__).resolve().parent.parent / "data" / "examples"
           / "good-01-lateral-epicondylitis-graston.json")


@pytest.fixture
def app(app_for: Callable[..., Any]) -> Any:
    return app_for(IASTM_SMART_AUTH="true", IASTM_API_TOKENS="dev:read+write")


def test_discovery_names_the_token_endpoint_and_backend_capabilities(app: Any) -> None:
    response = app.test_client().get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["token_endpoint"] == TOKEN_URL
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert set(doc["capabilities"]) == {"client-confidential-asymmetric", "permission-v2",
                                        "permission-v1"}
    assert "system/*.rs" in doc["scopes_supported"]
    assert "authorization_endpoint" not in doc  # no launch: docs/smart-bulk.md


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_client_gets_a_token_and_reads_the_facade_with_it(app: Any, alg: str) -> None:
    client = app.test_client()
    client_id = register(app, alg=alg)
    response = client.post("/auth/token", data=form(client_id, alg=alg))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/*.rs"
    assert "refresh_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == client_id
    assert claims["aud"] == "http://localhost/fhir"
    found = client.get("/fhir/Patient", headers=bearer(body["access_token"]))
    assert found.status_code == 200
    assert found.get_json()["resourceType"] == "Bundle"


def test_our_access_tokens_verify_with_the_published_jwks(app: Any) -> None:
    client = app.test_client()
    access = token(client, register(app))
    keys = client.get("/auth/jwks").get_json()
    public = jwt.PyJWK(keys["keys"][0])
    claims = jwt.decode(access, public.key, algorithms=["RS384"], audience="http://localhost/fhir")
    assert claims["scope"] == "system/*.rs"


def _error(response: Any, error: str, status: int = 400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error
    assert body["error_description"]
    return str(body["error_description"])


def test_wrong_content_type_is_invalid_request(app: Any) -> None:
    client = app.test_client()
    response = client.post("/auth/token", json=form(register(app)))
    assert "x-www-form-urlencoded" in _error(response, "invalid_request")


@pytest.mark.parametrize(("change", "error"), [
    ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ({"grant_type": None}, "invalid_request"),
    ({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
     "invalid_request"),
    ({"client_assertion_type": None}, "invalid_request"),
    ({"client_assertion": None}, "invalid_request"),
    ({"scope": None}, "invalid_request"),
    ({"scope": "patient/*.read"}, "invalid_scope"),
    ({"scope": "system/Patient.cruds"}, "invalid_scope"),
])
def test_bad_form_fields_are_refused(app: Any, change: dict[str, Any], error: str) -> None:
    response = app.test_client().post("/auth/token", data=form(register(app), **change))
    _error(response, error)


def _assertion(client_id: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 120,
            "jti": f"j-{time.time_ns()}", **claims}
    private = jwt.PyJWK(key("ES384.private"), algorithm="ES384")
    return jwt.encode(body, private.key, algorithm="ES384",
                      headers={"typ": "JWT", "kid": key("ES384.private")["kid"]})


@pytest.mark.parametrize(("claims", "match"), [
    ({"aud": "http://localhost/fhir/auth/token"}, "aud"),
    ({"exp": int(time.time()) - 600}, "expired"),
])
def test_bad_assertion_claims_are_invalid_client(app: Any, claims: dict[str, Any],
                                                 match: str) -> None:
    client_id = register(app)
    response = app.test_client().post("/auth/token", data=form(
        client_id, client_assertion=_assertion(client_id, **claims)))
    assert match in _error(response, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_kid_is_invalid_client(app: Any) -> None:
    client_id = register(app, alg="ES384")
    response = app.test_client().post("/auth/token", data=form(client_id, alg="RS384"))
    assert "kid" in _error(response, "invalid_client", 401)


def test_a_bad_signature_is_invalid_client(app: Any) -> None:
    client_id = register(app)
    head, body, _ = _assertion(client_id).split(".")
    other_sig = _assertion(client_id).split(".")[2]
    response = app.test_client().post("/auth/token", data=form(
        client_id, client_assertion=f"{head}.{body}.{other_sig}"))
    assert "signature" in _error(response, "invalid_client", 401)


def test_a_reused_jti_is_invalid_client(app: Any) -> None:
    client = app.test_client()
    client_id = register(app)
    body = form(client_id)
    assert client.post("/auth/token", data=body).status_code == 200
    assert "jti" in _error(client.post("/auth/token", data=body), "invalid_client", 401)


def test_an_unregistered_client_is_invalid_client(app: Any) -> None:
    response = app.test_client().post("/auth/token", data=form("0" * 32))
    assert "not registered" in _error(response, "invalid_client", 401)


def test_scopes_are_reduced_to_the_registered_ones(app: Any) -> None:
    client = app.test_client()
    client_id = register(app, scope="system/Patient.rs system/Observation.r")
    response = client.post("/auth/token", data=form(
        client_id, scope="system/Patient.rs system/Observation.rs system/Encounter.r"))
    assert response.status_code == 200
    assert response.get_json()["scope"] == "system/Patient.rs"


def test_the_facade_needs_a_token_and_answers_401_with_a_challenge(app: Any) -> None:
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer dev"}, {"Authorization": "Bearer x.y.z"}):
        response = client.get("/fhir/Patient", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/metadata").status_code == 200


def test_scopes_are_enforced_per_interaction(app: Any) -> None:
    client = app.test_client()
    assert client.post("/api/sessions", json=json.loads(EXAMPLE.read_text()),
                       headers={"Authorization": "Bearer dev"}).status_code == 201
    client_id = register(app, scope="system/Patient.r system/Observation.s")
    access = bearer(token(client, client_id, scope="system/Patient.r system/Observation.s"))
    patient = client.get("/fhir/Patient", headers={"Authorization": "Bearer dev"})
    assert patient.status_code == 401  # static tokens do not open the facade under SMART
    found = client.get("/fhir/Observation", headers=access)
    assert found.status_code == 200
    pid = found.get_json()["entry"][0]["resource"]["subject"]["reference"].split("/")[1]
    assert client.get(f"/fhir/Patient/{pid}", headers=access).status_code == 200
    denied = client.get("/fhir/Patient", headers=access)
    assert denied.status_code == 403
    assert denied.get_json()["issue"][0]["code"] == "forbidden"
    assert client.get(f"/fhir/Patient/{pid}/_history", headers=access).status_code == 200
    assert client.get("/fhir/Encounter", headers=access).status_code == 403


def test_the_records_api_keeps_the_static_tokens(app: Any) -> None:
    client = app.test_client()
    assert client.get("/api/sessions", headers={"Authorization": "Bearer dev"}).status_code == 200
    access = token(client, register(app))
    assert client.get("/api/sessions", headers=bearer(access)).status_code == 401


def test_a_disabled_client_loses_its_tokens_at_once(app: Any) -> None:
    client = app.test_client()
    client_id = register(app)
    access = bearer(token(client, client_id))
    assert client.get("/fhir/Patient", headers=access).status_code == 200
    assert app.extensions["fhir_iastm"].authorizer.disable_client(client_id)
    assert client.get("/fhir/Patient", headers=access).status_code == 401
    _error(client.post("/auth/token", data=form(client_id)), "invalid_client", 401)


def test_an_expired_access_token_is_refused(app: Any) -> None:
    client = app.test_client()
    access = token(client, register(app))
    authorizer = app.extensions["fhir_iastm"].authorizer
    real = authorizer.clock
    authorizer.clock = lambda: real() + 301
    try:
        response = client.get("/fhir/Patient", headers=bearer(access))
    finally:
        authorizer.clock = real
    assert response.status_code == 401
    assert "expired" in response.get_json()["issue"][0]["diagnostics"]


def test_the_token_endpoint_is_off_without_smart_auth(app_for: Callable[..., Any]) -> None:
    client = app_for().test_client()
    signed = sign_assertion(key("ES384.private"), client_id="x", token_url=TOKEN_URL,
                            now=int(time.time()))
    response = client.post("/auth/token", data={"grant_type": "client_credentials",
                                                "client_assertion": signed})
    assert "IASTM_SMART_AUTH" in _error(response, "invalid_request")
