"""Base R4 required bindings are checked although no profile re-declares them (issue 10 #2): the
R4 table (docs/r4-definitions.md) is the one mechanism."""

from __future__ import annotations

import pytest

from fhir_iastm.profiles import load_profiles
from fhir_iastm.validation import validate
from tests.validation.test_laterality import ROOT


@pytest.mark.parametrize(
    ("resource", "rule"),
    [
        ({"resourceType": "Procedure", "status": "bogus", "subject": {"reference": "Patient/1"}},
         "binding:Procedure.status"),
        ({"resourceType": "Observation", "status": "bogus", "code": {"text": "x"}},
         "binding:Observation.status"),
        ({"resourceType": "Patient", "gender": "m"}, "binding:Patient.gender"),
    ],
)  # fmt: skip
def test_bogus_codes_are_errors_without_a_profile(resource: dict, rule: str) -> None:
    index = load_profiles(ROOT / "profiles")
    errors = [i.details for i in validate(resource, index, profile=None) if i.is_error]
    assert rule in errors


def test_valid_statuses_pass() -> None:
    index = load_profiles(ROOT / "profiles")
    for status in ("completed", "not-done", "entered-in-error"):
        resource = {"resourceType": "Procedure", "status": status,
                    "subject": {"reference": "Patient/1"}}  # fmt: skip
        assert not [i for i in validate(resource, index) if i.details == "binding:Procedure.status"]
