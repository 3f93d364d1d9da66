"""Our client-assertion signer against an independent authorization server: panva
``oidc-provider`` (npm, tests/authz/, installed by ``npm ci`` in scripts/test), configured for the
client-credentials grant with ``private_key_jwt`` and RS384/ES384. Its token endpoint must accept
our assertions, and refuse them when the audience or the key is wrong; the push's token client
(``client.smart_tokens``) gets tokens with the v2 and v1 push scopes from it, and each refusal is
one line naming the setting and the server's answer (docs/targets.md#authentication)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fhir_iastm.client.auth import SmartConfig, jwk_of_json
from fhir_iastm.client.smart_tokens import SmartTokens
from fhir_iastm.errors import FhirAuthError
from fhir_iastm.smart.assertion import ASSERTION_TYPE, sign_assertion
from fhir_iastm.smart.scopes import PUSH_NEEDS, needed_scopes
from tests.integration.authz_server import oidc_provider
from tests.smart.helpers import key, public_text

pytestmark = pytest.mark.integration
PUSH_V2 = needed_scopes(PUSH_NEEDS)
PUSH_V1 = needed_scopes(PUSH_NEEDS, v1=True)
CLIENTS = [
    {"client_id": "iastm-es384", "jwks": json.loads(public_text("ES384")), "scope": "system/*.rs"},
    {"client_id": "iastm-rs384", "jwks": json.loads(public_text("RS384")), "scope": "system/*.rs"},
    {"client_id": "iastm-push-es384", "jwks": json.loads(public_text("ES384")),
     "scope": PUSH_V2},
    {"client_id": "iastm-push-rs384-v1", "jwks": json.loads(public_text("RS384")),
     "scope": PUSH_V1},
]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oidc-provider on a free 127.0.0.1 port, stopped by its PID afterwards."""
    with oidc_provider(tmp_path_factory.mktemp("authz"), CLIENTS) as url:
        yield url


def _token(issuer: str, client_id: str, alg: str, *, aud: str | None = None,
           scope: str = "system/*.rs") -> requests.Response:
    token_url = f"{issuer}/token"
    assertion = sign_assertion(key(f"{alg}.private"), client_id=client_id,
                               token_url=aud or token_url, now=int(time.time()))
    return requests.post(token_url, timeout=10, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion, "scope": scope})


@pytest.mark.parametrize(("client_id", "alg"), [("iastm-es384", "ES384"),
                                                ("iastm-rs384", "RS384")])
def test_oidc_provider_accepts_our_assertions(issuer: str, client_id: str, alg: str) -> None:
    response = _token(issuer, client_id, alg)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["access_token"]
    assert body["scope"] == "system/*.rs"


def test_oidc_provider_refuses_a_wrong_audience(issuer: str) -> None:
    response = _token(issuer, "iastm-es384", "ES384", aud="https://elsewhere.example/token")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_oidc_provider_refuses_a_key_of_another_client(issuer: str) -> None:
    response = _token(issuer, "iastm-es384", "RS384")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def _tokens(issuer: str, client_id: str, alg: str, *, v1: bool = False,
            token_url: str | None = None) -> SmartTokens:
    jwk = jwk_of_json(json.dumps(key(f"{alg}.private")))
    config = SmartConfig(client_id, jwk, v1=v1, token_url=token_url or f"{issuer}/token")
    return SmartTokens("http://fhir.invalid/fhir", config, requests.Session())


@pytest.mark.parametrize(("client_id", "alg", "v1"), [("iastm-push-es384", "ES384", False),
                                                      ("iastm-push-rs384-v1", "RS384", True)])
def test_the_push_token_client_gets_its_scopes(issuer: str, client_id: str, alg: str,
                                               v1: bool) -> None:
    tokens = _tokens(issuer, client_id, alg, v1=v1)
    first = tokens.token()
    assert first
    assert tokens.token() == first  # cached
    assert tokens.requests == 1
    assert tokens.scope == (PUSH_V1 if v1 else PUSH_V2)


def test_a_scope_the_server_refuses_is_one_line(issuer: str) -> None:
    with pytest.raises(FhirAuthError) as info:
        _tokens(issuer, "iastm-es384", "ES384").token()  # registered for system/*.rs only
    assert info.value.message.startswith(
        "IASTM_FHIR_SMART_SCOPES_V1 / the client's registered scopes: the token endpoint "
        f"{issuer}/token refused: HTTP 400 invalid_scope")
    assert "\n" not in info.value.message


def test_a_key_the_server_does_not_know_is_one_line(issuer: str) -> None:
    with pytest.raises(FhirAuthError) as info:
        _tokens(issuer, "iastm-push-es384", "RS384").token()
    assert info.value.message.startswith(
        "IASTM_FHIR_SMART_CLIENT_ID / IASTM_FHIR_SMART_KEY_FILE: the token endpoint "
        f"{issuer}/token refused: HTTP 401 invalid_client")


def test_a_wrong_token_url_is_one_line(issuer: str) -> None:
    with pytest.raises(FhirAuthError) as info:
        _tokens(issuer, "iastm-push-es384", "ES384", token_url=f"{issuer}/oauth2/token").token()
    assert info.value.message.startswith(
        f"IASTM_FHIR_SMART_TOKEN_URL: the token endpoint {issuer}/oauth2/token refused: HTTP 404")
