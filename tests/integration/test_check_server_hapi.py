"""``fhir-iastm check-server`` against the real HAPI (docs/targets.md#readiness-check): the
report, the probe writes and their removal, the profiles check before and after load-profiles."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient
from fhir_iastm.mapping.ids import sid
from fhir_iastm.service import check_server
from tests.integration.test_push_pull import CountingSession

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
pytestmark = pytest.mark.integration


def report(hapi_base_url: str, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = CliRunner().invoke(main, ["check-server", "--server", hapi_base_url, "--json",
                                       *args])
    body = json.loads(result.stdout)
    assert body["server"] == hapi_base_url
    return result.exit_code, {c["check"]: c for c in body["checks"]}


def at_least_two_patients(hapi_base_url: str) -> None:
    """The paging check needs a second page of Patients: on a fresh server, make two."""
    client = FhirClient(hapi_base_url)
    for n in range(2 - min(2, client.count("Patient", []))):
        client.create("Patient", {"resourceType": "Patient", "identifier": [
            {"system": "urn:example:check-server-test", "value": f"{uuid.uuid4().hex}-{n}"}]})


def test_hapi_is_ready_and_the_probe_writes_leave_nothing_behind(hapi_base_url: str) -> None:
    at_least_two_patients(hapi_base_url)
    base = f"https://probe-{uuid.uuid4().hex[:8]}.example.org/fhir"
    _, checks = report(hapi_base_url, "--canonical-base", base, "--probe-writes")
    for name in ("fhir-version", "transaction", "conditional-create", "conditional-update",
                 "if-match", "search-parameters", "include", "auth", "paging", "clock"):
        assert checks[name]["status"] == "pass", checks[name]
    assert "probe:" in checks["if-match"]["detail"]
    assert "refused (HTTP 409)" in checks["if-match"]["detail"]
    assert checks["software"]["detail"].startswith("HAPI FHIR Server")
    assert checks["public-sandbox"]["status"] == "unknown"  # 127.0.0.1: not a known host
    assert checks["validate"]["status"] == "fail"  # nothing loaded under this fresh base
    client = FhirClient(hapi_base_url)
    assert client.count("Basic", [("identifier", f"{sid(base, 'readiness-probe')}|")]) == 0


def test_without_probe_writes_nothing_is_written(hapi_base_url: str) -> None:
    counting = CountingSession()
    checks = {c.name: c for c in check_server(
        FhirClient(hapi_base_url, session=counting), profiles=PROFILES,
        canonical_base="https://iastm.example.org/fhir", public_sandbox=True)}
    assert "probe:" not in checks["if-match"].detail
    assert checks["public-sandbox"].status == "pass"
    assert set(counting.sent) == {"GET"}


def test_the_validate_check_passes_once_our_profiles_are_loaded(hapi_base_url: str) -> None:
    base = f"https://loaded-{uuid.uuid4().hex[:8]}.example.org/fhir"
    loaded = CliRunner().invoke(main, ["load-profiles", "--server", hapi_base_url,
                                       "--canonical-base", base])
    assert loaded.exit_code == 0, loaded.output
    code, checks = report(hapi_base_url, "--canonical-base", base)
    assert checks["validate"]["status"] == "pass", checks["validate"]
    assert code == 0
