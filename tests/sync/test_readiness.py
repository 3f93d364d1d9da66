"""The readiness check's judging (pure) and the probes a real HAPI cannot fail (``responses``):
a server that ignores If-Match, one that refuses our token (docs/targets.md#readiness-check)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from fhir_iastm.client import FhirClient
from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.service import check_server
from fhir_iastm.sync.readiness import Facts, is_public_sandbox, judge

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
BASE = "http://fhir.test/r4"
OWNED = ("Encounter", "Condition", "Procedure", "Observation")
SHARED = ("Patient", "Practitioner", "Organization")


def statement(*, conditional_update: bool = True, versioning: str = "versioned-update",
              validate: bool = True) -> dict[str, Any]:
    resources = []
    for rtype in (*OWNED, *SHARED, "Device", "Basic"):
        resources.append({
            "type": rtype, "conditionalCreate": True,
            "conditionalUpdate": conditional_update or rtype not in OWNED,
            "versioning": versioning,
            "searchParam": [{"name": n} for n in ("identifier", "encounter", "patient")],
            "searchInclude": ["*"], "searchRevInclude": ["*"],
            "operation": [{"name": "validate"}] if validate else [],
        })
    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
            "software": {"name": "Test", "version": "1"},
            "rest": [{"mode": "server", "interaction": [{"code": "transaction"}],
                      "resource": resources}]}


def by_name(facts: Facts) -> dict[str, Any]:
    return {c.name: c for c in judge(facts)}


def test_a_server_without_conditional_update_gets_the_search_then_write_fallback() -> None:
    checks = by_name(Facts(BASE, Capabilities(statement(conditional_update=False))))
    check = checks["conditional-update"]
    assert check.status == "fail"
    assert "Encounter" in check.detail
    assert "search-then-write" in check.action
    assert checks["conditional-create"].status == "pass"
    assert checks["transaction"].status == "pass"


def test_if_match_unknown_without_versioned_update_and_the_probe_decides() -> None:
    caps = Capabilities(statement(versioning="versioned"))
    assert by_name(Facts(BASE, caps))["if-match"].status == "unknown"
    probed = Facts(BASE, caps, probes={"if-match": ("fail", "a stale If-Match was accepted")})
    assert by_name(probed)["if-match"].status == "fail"


def test_profiles_clock_paging_and_auth_are_judged_from_the_facts() -> None:
    facts = Facts(BASE, Capabilities(statement()), read_error="GET Patient: E_FHIR_AUTH 401",
                  paging=False, clock_offset_s=-300.0, profiles={"a": True, "b": False})
    checks = by_name(facts)
    assert checks["auth"].status == "fail"
    assert "401" in checks["auth"].detail
    assert checks["paging"].status == "fail"
    assert (checks["clock"].status, checks["clock"].detail) == (
        "fail", "server clock -300.0 s from ours")
    assert checks["validate"].status == "fail"
    assert "1 of 2" in checks["validate"].detail
    no_validate = by_name(Facts(BASE, Capabilities(statement(validate=False))))
    assert no_validate["validate"].status == "unknown"


def test_without_a_capability_statement_the_report_says_so() -> None:
    checks = by_name(Facts(BASE, None, caps_error="GET metadata: HTTP 500"))
    assert checks["capabilities"].status == "fail"
    assert "transaction" not in checks


@pytest.mark.parametrize(("url", "public"), [
    ("https://hapi.fhir.org/baseR4", True),
    ("https://server.fire.ly/r4", True),
    ("https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4", True),
    ("https://sandbox.example.org/fhir", True),
    ("https://ehr.hospital.example/fhir", False),
    ("http://127.0.0.1:18090/fhir", False),
])
def test_public_sandbox_heuristic(url: str, public: bool) -> None:
    assert is_public_sandbox(url) is public
    check = by_name(Facts(url))["public-sandbox"]
    assert check.status == ("pass" if public else "unknown")
    overridden = by_name(Facts(url, sandbox_setting=True))["public-sandbox"]
    assert (overridden.status, "per-run tag" in overridden.action) == ("pass", True)


def _transaction_reply(status: str, rid: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [{"response": {"status": status, "location": f"Basic/{rid}/_history/1"}}]}


@responses.activate
def test_a_server_that_ignores_if_match_fails_the_probe_and_the_probe_is_deleted() -> None:
    responses.get(f"{BASE}/metadata", json=statement())
    responses.get(f"{BASE}/Patient", json={"resourceType": "Bundle", "type": "searchset",
                                           "total": 0})
    responses.get(f"{BASE}/StructureDefinition",
                  json={"resourceType": "Bundle", "type": "searchset"})
    replies = iter([_transaction_reply("201 Created", "p1"), _transaction_reply("200 OK", "p1"),
                    _transaction_reply("200 OK", "p1")])
    responses.add_callback(responses.POST, BASE,
                           callback=lambda _: (200, {}, json.dumps(next(replies))))
    responses.put(f"{BASE}/Basic/p1", json={"resourceType": "Basic", "id": "p1"})
    deleted = responses.delete(f"{BASE}/Basic/p1", status=204)
    checks = {c.name: c for c in check_server(
        FhirClient(BASE), profiles=PROFILES, canonical_base="https://iastm.example.org/fhir",
        probe_writes=True)}
    assert checks["if-match"].status == "fail"
    assert "ignores If-Match" in checks["if-match"].detail
    assert checks["conditional-create"].status == "pass"
    assert checks["conditional-update"].status == "pass"
    assert deleted.call_count == 1
    assert checks["paging"].status == "unknown"
    put = next(c.request for c in responses.calls if c.request.method == "PUT")
    assert put.headers["If-Match"] == 'W/"999999"'
    assert re.search(r"probe", json.loads(put.body)["code"]["text"])


@responses.activate
def test_a_refused_token_is_one_failed_auth_check_and_nothing_is_written() -> None:
    responses.get(f"{BASE}/metadata", json=statement())
    responses.get(f"{BASE}/Patient", status=401, json={
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "invalid token"}]})
    checks = {c.name: c for c in check_server(
        FhirClient(BASE, token="t"), profiles=PROFILES,
        canonical_base="https://iastm.example.org/fhir", probe_writes=True)}
    assert checks["auth"].status == "fail"
    assert "E_FHIR_AUTH" in checks["auth"].detail
    assert not [c for c in responses.calls if c.request.method != "GET"]
