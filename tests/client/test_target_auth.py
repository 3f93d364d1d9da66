"""Target authentication of the FHIR client against `responses` mocks (docs/targets.md): the
header of each kind, the SMART client's discovery, assertion, scopes, cache and refresh, and the
one-line errors of bad configurations. The real authorization servers are in
tests/integration/test_oidc_provider.py and tests/integration/test_smart_targets.py."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.client.auth import (
    SmartConfig,
    TargetAuth,
    generate_signing_key,
    jwk_of_json,
    load_signing_key,
    thumbprint,
)
from fhir_iastm.client.smart_tokens import SmartTokens
from fhir_iastm.errors import ConfigError, FhirAuthError, FhirUnavailableError
from fhir_iastm.smart.assertion import ASSERTION_TYPE, MAX_ASSERTION_LIFETIME
from tests.smart.helpers import key

BASE = "http://ehr.test/fhir"
TOKEN_URL = "http://auth.ehr.test/oauth/token"
DISCOVERY = f"{BASE}/.well-known/smart-configuration"
PUSH_SCOPE_V2 = ("system/Condition.cus system/Device.cus system/Encounter.cus "
                 "system/Observation.cus system/Organization.cus system/Patient.cus "
                 "system/Practitioner.cus system/Procedure.cus system/Provenance.cu")


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def smart(alg: str = "ES384", **overrides: Any) -> SmartConfig:
    return SmartConfig("client-1", jwk_of_json(json.dumps(key(f"{alg}.private"))), **overrides)


def discovery(mock: responses.RequestsMock, **extra: Any) -> None:
    mock.get(DISCOVERY, json={"token_endpoint": TOKEN_URL, **extra})


class TokenServer:
    """A token endpoint that records every request and answers tokens t1, t2, …"""

    def __init__(self, mock: responses.RequestsMock, *, scope: str | None = None,
                 expires_in: int = 300, delay: float = 0.0) -> None:
        self.forms: list[dict[str, str]] = []
        self.scope, self.expires_in, self.delay = scope, expires_in, delay
        mock.add_callback(responses.POST, TOKEN_URL, callback=self)

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(self.delay)
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.forms.append(form)
        body = {"access_token": f"t{len(self.forms)}", "token_type": "bearer",
                "expires_in": self.expires_in, "scope": self.scope or form["scope"]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


def client(auth: TargetAuth, **kwargs: Any) -> FhirClient:
    return FhirClient(BASE, auth=auth, retry=RetryPolicy(max_attempts=2), sleep=lambda _s: None,
                      **kwargs)


PATIENT = {"resourceType": "Patient", "id": "p1"}

# -- the static kinds ----------------------------------------------------------------------------


def test_static_bearer_basic_and_extra_headers(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/Patient/p1", json=PATIENT)
    client(TargetAuth(token="s3cret", headers={"X-Api-Key": "k1"})).read("Patient", "p1")
    client(TargetAuth(basic=("user", "pw"))).read("Patient", "p1")
    first, second = (c.request.headers for c in mock.calls)
    assert first["Authorization"] == "Bearer s3cret"
    assert first["X-Api-Key"] == "k1"
    assert second["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()


def _certificate(tmp_path: Path, not_after: datetime) -> tuple[Path, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fhir-iastm test client")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_after - timedelta(days=30)).not_valid_after(not_after)
            .sign(private, hashes.SHA256()))
    cert_path, key_path = tmp_path / "client.crt", tmp_path / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return cert_path, key_path


def test_mutual_tls_goes_with_every_request(tmp_path: Path) -> None:
    """The handshake itself is tested for real in tests/client/test_mtls.py."""
    cert, private = _certificate(tmp_path, datetime.now(UTC) + timedelta(days=30))
    auth = TargetAuth(client_cert=cert, client_key=private, ca_bundle=cert)
    assert auth.tls() == {"cert": (str(cert), str(private)), "verify": str(cert)}
    assert TargetAuth().tls() == {}


def test_an_expired_client_certificate_is_refused_naming_the_setting(tmp_path: Path) -> None:
    cert, private = _certificate(tmp_path, datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(ConfigError, match=r"^IASTM_FHIR_CLIENT_CERT: the certificate expired on"):
        TargetAuth(client_cert=cert, client_key=private)


def test_credentials_that_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match="IASTM_FHIR_TOKEN"):
        TargetAuth(token="t", smart=smart())
    with pytest.raises(ConfigError, match="IASTM_FHIR_CLIENT_CERT and IASTM_FHIR_CLIENT_KEY"):
        TargetAuth(client_cert=Path("x.crt"))


# -- SMART Backend Services ----------------------------------------------------------------------


def test_smart_discovery_assertion_and_bearer(mock: responses.RequestsMock) -> None:
    discovery(mock)
    tokens = TokenServer(mock)
    mock.get(f"{BASE}/Patient/p1", json=PATIENT)
    before = int(time.time())
    client(TargetAuth(smart=smart("RS384"))).read("Patient", "p1")
    assert mock.calls[-1].request.headers["Authorization"] == "Bearer t1"
    form = tokens.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert form["scope"] == PUSH_SCOPE_V2
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"typ": "JWT", "alg": "RS384", "kid": key("RS384.private")["kid"]}
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["aud"] == TOKEN_URL
    assert before < claims["exp"] <= before + MAX_ASSERTION_LIFETIME
    assert claims["exp"] <= int(time.time()) + 240  # a minute of margin for clock skew


def test_v1_scopes_and_the_pull_purpose() -> None:
    session: Any = None
    assert SmartTokens(BASE, smart(v1=True), session).scope.split()[:2] == [
        "system/Condition.write", "system/Condition.read"]
    assert "system/Provenance.write" in SmartTokens(BASE, smart(v1=True), session).scope
    assert "system/Provenance.read" not in SmartTokens(BASE, smart(v1=True), session).scope
    assert SmartTokens(BASE, smart(purpose="pull"), session).scope.split() == [
        f"system/{t}.rs" for t in ("Condition", "Encounter", "Observation", "Organization",
                                   "Patient", "Practitioner", "Procedure")]


def test_a_missing_permission_is_reported_before_any_fhir_request(
        mock: responses.RequestsMock) -> None:
    discovery(mock)
    TokenServer(mock, scope="system/*.rs")  # read-only granted: the push needs writes
    fhir = client(TargetAuth(smart=smart()))
    with pytest.raises(FhirAuthError) as info:
        fhir.authenticate()
    assert "granted 'system/*.rs', which lacks Condition.cus" in info.value.message
    assert "Provenance.cu" in info.value.message
    assert all(not c.request.url.startswith(BASE + "/Patient") for c in mock.calls)
    assert [c.request.method for c in mock.calls] == ["GET", "POST"]  # discovery, token


def test_a_wide_grant_covers_the_push() -> None:
    from fhir_iastm.smart.scopes import PUSH_NEEDS, lenient_scopes, missing_permissions

    assert missing_permissions(lenient_scopes("system/*.cruds launch openid"), PUSH_NEEDS) == []
    assert missing_permissions(lenient_scopes("system/*.write system/*.read"), PUSH_NEEDS) == []


def test_the_token_is_cached_and_renewed_shortly_before_expiry(
        mock: responses.RequestsMock) -> None:
    discovery(mock)
    tokens = TokenServer(mock, expires_in=300)
    now = [1_000_000.0]
    fhir = client(TargetAuth(smart=smart()))
    assert fhir.tokens is not None
    fhir.tokens.clock = lambda: now[0]
    mock.get(f"{BASE}/Patient/p1", json=PATIENT)
    for _ in range(5):
        fhir.read("Patient", "p1")
    assert len(tokens.forms) == 1  # warm cache: no token request per call
    now[0] += 300 - 29  # inside the 30 s margin: renewed
    fhir.read("Patient", "p1")
    assert len(tokens.forms) == 2
    assert mock.calls[-1].request.headers["Authorization"] == "Bearer t2"
    assert len([c for c in mock.calls if c.request.url == DISCOVERY]) == 1


def test_one_refresh_in_flight_under_eight_threads(mock: responses.RequestsMock) -> None:
    discovery(mock)
    tokens = TokenServer(mock, delay=0.2)
    source = SmartTokens(BASE, smart(), __import__("requests").Session())
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(source.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["t1"] * 8
    assert len(tokens.forms) == 1


def test_a_401_refetches_once_and_retries_once_with_a_new_jti(
        mock: responses.RequestsMock) -> None:
    discovery(mock)
    tokens = TokenServer(mock)
    mock.get(f"{BASE}/Patient/p1", status=401)
    mock.get(f"{BASE}/Patient/p1", json=PATIENT)
    fhir = client(TargetAuth(smart=smart()))
    assert fhir.read("Patient", "p1") == PATIENT
    reads = [c.request.headers["Authorization"] for c in mock.calls if "Patient" in c.request.url]
    assert reads == ["Bearer t1", "Bearer t2"]
    jtis = {jwt.decode(f["client_assertion"], options={"verify_signature": False})["jti"]
            for f in tokens.forms}
    assert len(jtis) == 2


def test_a_second_401_is_the_error(mock: responses.RequestsMock) -> None:
    discovery(mock)
    tokens = TokenServer(mock)
    mock.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(FhirAuthError):
        client(TargetAuth(smart=smart())).read("Patient", "p1")
    assert len(tokens.forms) == 2
    assert len([c for c in mock.calls if "Patient" in c.request.url]) == 2


def test_an_expired_operation_outcome_refetches(mock: responses.RequestsMock) -> None:
    discovery(mock)
    TokenServer(mock)
    expired = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "expired", "diagnostics": "token expired"}]}
    mock.post(f"{BASE}/Patient", status=403, json=expired)
    mock.post(f"{BASE}/Patient", status=201, json=PATIENT)
    created = client(TargetAuth(smart=smart())).create("Patient", {"resourceType": "Patient"})
    assert created == PATIENT
    posts = [c.request.headers["Authorization"] for c in mock.calls if "Patient" in c.request.url]
    assert posts == ["Bearer t1", "Bearer t2"]


def test_a_static_token_is_not_refetched_on_401(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(FhirAuthError):
        client(TargetAuth(token="static")).read("Patient", "p1")
    assert len(mock.calls) == 1


# -- bad configuration: one line naming the setting and the server's answer ----------------------


def test_a_key_without_kid_is_refused() -> None:
    jwk = {k: v for k, v in key("ES384.private").items() if k != "kid"}
    with pytest.raises(ConfigError, match=r"^IASTM_FHIR_SMART_KEY_FILE: the key has no 'kid'"):
        jwk_of_json(json.dumps(jwk))


@pytest.mark.parametrize(("jwk", "expected"), [
    ({**key("RS384.private"), "alg": "RS256"}, "alg 'RS256' is not allowed"),
    ({**key("RS384.private"), "alg": "ES384"}, "an RSA key cannot sign ES384"),
    ({**key("ES384.private"), "crv": "P-256"}, "an EC key on P-256 cannot sign ES384"),
])
def test_a_wrong_algorithm_is_refused(jwk: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=f"^IASTM_FHIR_SMART_KEY_FILE: {expected}"):
        jwk_of_json(json.dumps(jwk))


def test_an_ec_key_off_p384_is_refused(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (tmp_path / "k.pem").write_bytes(pem)
    with pytest.raises(ConfigError, match="neither RSA nor EC P-384"):
        load_signing_key(tmp_path / "k.pem")


def test_discovery_without_our_algorithm(mock: responses.RequestsMock) -> None:
    discovery(mock, token_endpoint_auth_signing_alg_values_supported=["RS384"])
    with pytest.raises(FhirAuthError, match=r"^IASTM_FHIR_SMART_KEY_FILE: our key signs ES384; "
                                            r"the server accepts RS384$"):
        client(TargetAuth(smart=smart("ES384"))).authenticate()


def test_no_discovery_document(mock: responses.RequestsMock) -> None:
    mock.get(DISCOVERY, status=404)
    with pytest.raises(FhirAuthError, match="gave no token_endpoint .HTTP 404.; set "
                                            "IASTM_FHIR_SMART_TOKEN_URL"):
        client(TargetAuth(smart=smart())).authenticate()


def test_a_wrong_token_url(mock: responses.RequestsMock) -> None:
    mock.post(TOKEN_URL, status=404, body="not here")
    with pytest.raises(FhirAuthError) as info:
        client(TargetAuth(smart=smart(token_url=TOKEN_URL))).authenticate()
    assert info.value.message == (f"IASTM_FHIR_SMART_TOKEN_URL: the token endpoint {TOKEN_URL} "
                                  "refused: HTTP 404")
    assert not any(c.request.url == DISCOVERY for c in mock.calls)  # the setting wins


@pytest.mark.parametrize(("error", "setting"), [
    ("invalid_client", "IASTM_FHIR_SMART_CLIENT_ID / IASTM_FHIR_SMART_KEY_FILE"),
    ("invalid_scope", "IASTM_FHIR_SMART_SCOPES_V1 / the client's registered scopes"),
])
def test_a_refused_token_request(mock: responses.RequestsMock, error: str, setting: str) -> None:
    discovery(mock)
    mock.post(TOKEN_URL, status=400, json={"error": error, "error_description": "no."})
    with pytest.raises(FhirAuthError) as info:
        client(TargetAuth(smart=smart())).authenticate()
    assert info.value.message == (f"{setting}: the token endpoint {TOKEN_URL} refused: "
                                  f"HTTP 400 {error}: no.")
    assert "\n" not in info.value.message


def test_a_transient_token_failure_is_retried_once_with_a_new_assertion(
        mock: responses.RequestsMock) -> None:
    discovery(mock)
    mock.post(TOKEN_URL, status=503)
    mock.post(TOKEN_URL, json={"access_token": "t", "expires_in": 60})
    source = SmartTokens(BASE, smart(), __import__("requests").Session())
    assert source.token() == "t"
    assertions = [parse_qs(c.request.body)["client_assertion"][0] for c in mock.calls
                  if c.request.url == TOKEN_URL]
    assert len(assertions) == 2
    assert assertions[0] != assertions[1]
    mock.replace(responses.POST, TOKEN_URL, status=503)
    source.invalidate("t")
    with pytest.raises(FhirUnavailableError, match="SMART token endpoint"):
        source.token()


def test_no_token_or_assertion_reaches_a_log_line(mock: responses.RequestsMock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    discovery(mock)
    mock.post(TOKEN_URL, json={"access_token": "eyJhbGciOi.fake.token", "expires_in": 60,
                               "scope": PUSH_SCOPE_V2})
    mock.get(f"{BASE}/Patient/p1", status=401)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FhirAuthError) as info:
        client(TargetAuth(smart=smart())).read("Patient", "p1")
    assert caplog.records
    assert "eyJ" not in caplog.text
    assert "eyJ" not in str(info.value)


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_generated_key_signs_assertions_its_jwks_verifies(alg: str, tmp_path: Path) -> None:
    from fhir_iastm.smart.assertion import RegisteredClient, sign_assertion, verify_assertion

    pem, public = generate_signing_key(alg)
    (tmp_path / "k.pem").write_bytes(pem)
    private = load_signing_key(tmp_path / "k.pem")
    assert private["kid"] == public["kid"] == thumbprint(public)
    assert public["alg"] == alg
    assert "d" not in public
    now = int(time.time())
    assertion = sign_assertion(private, client_id="c", token_url=TOKEN_URL, now=now)
    registered = RegisteredClient("c", True, None, "system/*.rs", {"keys": [public]})
    claims = verify_assertion(assertion, token_url=TOKEN_URL, now=now,
                              client=lambda _c: registered, keys=lambda c, _f: c.jwks or {})
    assert claims.kid == public["kid"]
