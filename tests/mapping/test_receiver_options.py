"""Receiver options performed_as_datetime and strip_profiles (issue 10 #12): what they change, the
round trip stays lossless, and each has its validation mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_iastm.mapping import MappingSettings, canonical_for_roundtrip, from_fhir, to_fhir
from fhir_iastm.mapping.receiver import claim_profiles, profile_for
from fhir_iastm.profiles import load_profiles, performed_as_datetime_variant
from fhir_iastm.validation import validate
from tests.mapping.support import GOOD, good, resources

ROOT = Path(__file__).resolve().parents[2]
INDEX = load_profiles(ROOT / "profiles")
DATETIME = MappingSettings(performed_as_datetime=True)
STRIPPED = MappingSettings(strip_profiles=True)


def _errors(issues: list) -> list[str]:
    return sorted({str(i.details) for i in issues if i.is_error})


@pytest.mark.parametrize("name", GOOD)
def test_performed_as_datetime(name: str) -> None:
    record = good(name)
    bundle = to_fhir(record, DATETIME)
    # each Procedure's own start: the visit's, or (schema 2.0) its part of the visit
    starts = [p.get("performedPeriod", {}).get("start")
              for p in resources(to_fhir(record), "Procedure")]
    for proc, start in zip(resources(bundle, "Procedure"), starts, strict=True):
        assert "performedPeriod" not in proc
        if record.status != "cancelled":
            assert proc["performedDateTime"] == start
            assert start >= record.session.start
    [encounter] = resources(bundle, "Encounter")
    assert encounter["period"]["start"] == record.session.start
    assert canonical_for_roundtrip(from_fhir(bundle)) == canonical_for_roundtrip(record)
    # the variant accepts it; the default profiles ask for a Period on a completed session
    assert _errors(validate(bundle, performed_as_datetime_variant(INDEX))) == []
    expected = ["iastm-proc-9"] if record.status == "completed" else []
    assert _errors(validate(bundle, INDEX)) == expected


@pytest.mark.parametrize("name", GOOD)
def test_strip_profiles(name: str) -> None:
    record = good(name)
    bundle = to_fhir(record, STRIPPED)
    assert all("meta" not in r for r in resources(bundle))
    assert canonical_for_roundtrip(from_fhir(bundle)) == canonical_for_roundtrip(record)
    claimed = claim_profiles(bundle)
    assert claimed == to_fhir(record)  # exactly the profiles the default output claims
    assert _errors(validate(claimed, INDEX)) == []


def test_profile_for_names_each_kind() -> None:
    bundle = to_fhir(good("good-06"))
    for resource in resources(bundle):
        assert profile_for(resource) == resource["meta"]["profile"][0]
    assert profile_for({"resourceType": "Basic"}) is None


def test_cli_modes() -> None:
    cli = [sys.executable, "-m", "fhir_iastm"]
    example = str(ROOT / "tests/data/examples" / f"{GOOD[0]}.json")

    def run(map_args: list[str], validate_args: list[str]) -> int:
        mapped = subprocess.run(
            [*cli, "map", *map_args, example], capture_output=True, text=True, cwd=ROOT, check=True
        )
        return subprocess.run(
            [*cli, "validate", *validate_args, "-"],
            input=mapped.stdout,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).returncode

    assert run(["--performed-as-datetime"], []) == 1
    assert run(["--performed-as-datetime"], ["--performed-as-datetime"]) == 0
    assert run(["--strip-profiles"], ["--stripped"]) == 0
    assert (
        json.loads(
            subprocess.run(
                [*cli, "map", "--strip-profiles", example],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            ).stdout
        )["entry"][0]["resource"].get("meta")
        is None
    )
