"""``fhir-iastm load-profiles`` uploads what a validating server can use (issue 10 #3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient
from fhir_iastm.mapping import to_fhir
from fhir_iastm.profiles import load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.service import NOT_FOR_SERVERS, conformance_resources
from tests.integration.test_oracle_hapi import remove_unusable

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_load_profiles_uploads_all_but_the_unusable_value_sets(hapi_base_url: str) -> None:
    index = load_profiles(ROOT / "profiles")
    remove_unusable(hapi_base_url, index)
    result = CliRunner().invoke(main, ["load-profiles", "--server", hapi_base_url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    everything = {f"{r['resourceType']}/{r['id']}" for r in conformance_resources(index)}
    assert set(out["resources"]) == everything - NOT_FOR_SERVERS
    assert out["uploaded"] == len(everything) - len(NOT_FOR_SERVERS)
    for key in NOT_FOR_SERVERS:
        url = next(d["url"] for d in index.resources if f"{d['resourceType']}/{d['id']}" == key)
        found = requests.get(f"{hapi_base_url}/{key.split('/')[0]}", params={"url": url},
                             timeout=60).json()
        assert found.get("total", len(found.get("entry") or [])) == 0, key
    # with that upload, the Procedures with a body-location qualifier validate without errors
    client = FhirClient(hapi_base_url)
    for name in ("good-01-lateral-epicondylitis-graston", "good-05-hamstring-strain-gua-sha"):
        record = load_record(json.loads((ROOT / f"tests/data/examples/{name}.json").read_text()))
        for entry in to_fhir(record)["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Procedure":
                outcome = client.validate(resource, resource["meta"]["profile"][0])
                errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
                assert errors == [], (name, errors)
