"""Client assertions: the SMART App Launch 2.2.0 worked example and every rule of the verifier.

Test data: the specification's example keys and signed assertions (tests/data/smart/, from the
SMART App Launch 2.2.0 source, client-confidential-asymmetric.md "Worked example").
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest

from fhir_iastm.smart.assertion import (
    RegisteredClient,
    TokenError,
    public_jwks,
    sign_assertion,
    verify_assertion,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "smart"
WORKED = json.loads((DATA / "worked_example.json").read_text())
CLIENT_ID = WORKED["client_id"]
TOKEN_URL = WORKED["token_url"]


def jwks(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def private(alg: str) -> dict[str, Any]:
    return jwks(f"{alg}.private")["keys"][0]


PUBLIC = {"keys": jwks("RS384.public")["keys"] + jwks("ES384.public")["keys"]}


def verify(assertion: str, *, now: int, client: RegisteredClient | None = None,
           keys: dict[str, Any] | None = None, token_url: str = TOKEN_URL) -> Any:
    registered = client or RegisteredClient(CLIENT_ID, True, None, "system/*.rs")
    return verify_assertion(
        assertion, token_url=token_url, now=now,
        client=lambda cid: registered if cid == registered.client_id else None,
        keys=lambda _c, _fresh: keys if keys is not None else PUBLIC)


def fails(assertion: str, match: str, **kwargs: Any) -> TokenError:
    with pytest.raises(TokenError, match=match) as info:
        verify(assertion, **kwargs)
    assert info.value.error == "invalid_client"
    assert info.value.status == 401
    return info.value


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_the_specification_worked_example_is_accepted(alg: str) -> None:
    claims = verify(WORKED[alg], now=WORKED["exp"] - 60)
    assert (claims.client_id, claims.jti, claims.exp) == (CLIENT_ID, WORKED["jti"], WORKED["exp"])


def test_the_worked_example_is_refused_once_expired() -> None:
    fails(WORKED["RS384"], "expired", now=WORKED["exp"] + 3600)


def test_the_worked_example_is_refused_for_another_token_url() -> None:
    fails(WORKED["RS384"], "aud", now=WORKED["exp"] - 60, token_url="https://other.example/token")


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_our_signer_produces_what_our_verifier_accepts(alg: str) -> None:
    now = 1_900_000_000
    assertion = sign_assertion(private(alg), client_id=CLIENT_ID, token_url=TOKEN_URL, now=now)
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": alg, "typ": "JWT", "kid": private(alg)["kid"]}
    claims = verify(assertion, now=now)
    assert claims.exp == now + 300


def test_es384_signatures_are_raw_r_s_of_96_bytes() -> None:
    assertion = sign_assertion(private("ES384"), client_id=CLIENT_ID, token_url=TOKEN_URL, now=1)
    signature = assertion.split(".")[2]
    assert len(base64.urlsafe_b64decode(signature + "==")) == 96
    assert len(base64.urlsafe_b64decode(WORKED["ES384"].split(".")[2] + "==")) == 96


def _forged(header: dict[str, Any], claims: dict[str, Any], alg: str = "RS384") -> str:
    key = jwt.PyJWK(private(alg), algorithm=alg)
    return jwt.encode(claims, key.key, algorithm=alg, headers=header)


NOW = 1_900_000_000
GOOD_CLAIMS = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_URL, "exp": NOW + 240,
               "jti": "j-1"}
KID = private("RS384")["kid"]


@pytest.mark.parametrize(("header", "claims", "match"), [
    ({"typ": "JOSE", "kid": KID}, {}, "typ"),
    ({"kid": KID, "typ": None}, {}, "typ"),
    ({"typ": "JWT"}, {}, "kid"),
    ({"typ": "JWT", "kid": "not-registered"}, {}, "no RS384 key with kid"),
    ({"typ": "JWT", "kid": KID}, {"sub": "someone-else"}, "'sub' must equal 'iss'"),
    ({"typ": "JWT", "kid": KID}, {"iss": "x", "sub": "x"}, "not registered"),
    ({"typ": "JWT", "kid": KID}, {"aud": TOKEN_URL + "/"}, "aud"),
    ({"typ": "JWT", "kid": KID}, {"exp": NOW + 301 + 30}, "more than 5 minutes"),
    ({"typ": "JWT", "kid": KID}, {"exp": NOW - 31}, "expired"),
    ({"typ": "JWT", "kid": KID}, {"jti": None}, "jti"),
    ({"typ": "JWT", "kid": KID, "jku": "https://elsewhere.example/jwks"}, {}, "jku"),
])
def test_assertions_breaking_a_rule_are_refused(header: dict[str, Any],
                                                claims: dict[str, Any], match: str) -> None:
    merged = {k: v for k, v in {**GOOD_CLAIMS, **claims}.items() if v is not None}
    fails(_forged(header, merged), match, now=NOW)


def test_exp_within_the_leeway_is_accepted() -> None:
    verify(_forged({"typ": "JWT", "kid": KID}, {**GOOD_CLAIMS, "exp": NOW + 320}), now=NOW)
    verify(_forged({"typ": "JWT", "kid": KID}, {**GOOD_CLAIMS, "exp": NOW - 20}), now=NOW)


@pytest.mark.parametrize("alg", ["RS256", "HS256", "ES256", "none"])
def test_other_algorithms_are_refused(alg: str) -> None:
    header = base64.urlsafe_b64encode(json.dumps(
        {"typ": "JWT", "alg": alg, "kid": KID}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(GOOD_CLAIMS).encode()).rstrip(b"=").decode()
    fails(f"{header}.{body}.c2ln", "alg", now=NOW)


def test_a_bad_signature_is_refused() -> None:
    good = _forged({"typ": "JWT", "kid": KID}, GOOD_CLAIMS)
    head, body, sig = good.split(".")
    other = _forged({"typ": "JWT", "kid": KID}, {**GOOD_CLAIMS, "jti": "j-2"})
    fails(f"{head}.{other.split('.')[1]}.{sig}", "signature", now=NOW)


def test_an_es384_kid_on_an_rsa_key_is_refused() -> None:
    """The kid must name a key of the header's algorithm (no RSA key used for ES384)."""
    es = private("ES384")
    assertion = _forged({"typ": "JWT", "kid": KID}, GOOD_CLAIMS, alg="ES384")
    assert es["kid"] != KID
    fails(assertion, "no ES384 key", now=NOW)


def test_a_disabled_client_is_refused() -> None:
    disabled = RegisteredClient(CLIENT_ID, False, None, "system/*.rs")
    fails(_forged({"typ": "JWT", "kid": KID}, GOOD_CLAIMS), "disabled", now=NOW, client=disabled)


def test_jku_equal_to_the_registered_url_is_accepted_and_rotation_refetches() -> None:
    url = "https://client.example/jwks.json"
    client = RegisteredClient(CLIENT_ID, True, url, "system/*.rs")
    calls: list[bool] = []

    def keys(_c: RegisteredClient, fresh: bool) -> dict[str, Any]:
        calls.append(fresh)
        return PUBLIC if fresh else {"keys": []}  # the cached set predates the rotation

    assertion = _forged({"typ": "JWT", "kid": KID, "jku": url}, GOOD_CLAIMS)
    verify_assertion(assertion, token_url=TOKEN_URL, now=NOW, client=lambda _: client, keys=keys)
    assert calls == [False, True]


def test_public_jwks_drops_private_members() -> None:
    shown = public_jwks(jwks("RS384.private"))
    assert shown["keys"][0].keys().isdisjoint({"d", "p", "q", "dp", "dq", "qi"})
    assert shown["keys"][0]["key_ops"] == ["verify"]
    assert shown == {"keys": [{**jwks("RS384.public")["keys"][0]}]}
