"""Contraindication / precaution screening and consent (issue 10 #5, docs/clinical.md#screening):
record rules, the screening Observation, its profile, the lossless reverse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_iastm.errors import InvalidRecordError, MappingError
from fhir_iastm.mapping import MappingSettings, canonical_for_roundtrip, from_fhir, to_fhir
from fhir_iastm.profiles import load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import validate
from tests.mapping.support import resources
from tests.strategies import example
from tests.validation.test_laterality import ROOT

CS = "https://iastm.example.org/fhir/CodeSystem/iastm-screening"


def _record(example_name: str = "good-01", **screening: Any) -> dict[str, Any]:
    data = example(example_name)
    data["schema_version"] = "2.0"
    if data["status"] == "completed":
        data["session"]["iastm_minutes"] = 15
    data["screening"] = {
        "performed_at": data["session"]["start"],
        "anticoagulant_therapy": True,
        "skin_intact": True,
        "consent_obtained": True,
        **screening,
    }
    return data


def _screening(bundle: dict[str, Any]) -> dict[str, Any]:
    [obs] = [
        o for o in resources(bundle, "Observation")
        if o["identifier"][0]["value"].endswith("/obs/screening")
    ]  # fmt: skip
    return obs


def _components(obs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for c in obs["component"]:
        [coding] = c["code"]["coding"]
        assert coding["system"] == CS
        out[coding["code"]] = c.get("valueBoolean", c.get("valueString"))
    return out


def test_screening_is_one_observation_with_every_item() -> None:
    bundle = to_fhir(load_record(_record(findings=["varicosities"])))
    obs = _screening(bundle)
    assert obs["status"] == "final"
    assert obs["code"]["coding"][0] == {
        "system": CS,
        "code": "contraindication-screen",
        "display": "IASTM contraindication and precaution screening",
    }
    assert obs["category"][0]["coding"][0]["code"] == "exam"
    assert obs["effectiveDateTime"] == "2025-03-04T09:00:00-06:00"
    [procedure] = [p for p in resources(bundle, "Procedure") if "partOf" not in p]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert by_url[obs["partOf"][0]["reference"]] is procedure
    items = _components(obs)
    assert items["varicosities"] is True
    assert items["hematoma"] is False  # negatives are sent
    assert items["anticoagulant-therapy"] is True
    assert items["consent-obtained"] is True
    assert "override-reason" not in items
    assert len(items) == 12


def test_absolute_contraindication_needs_an_override_on_a_completed_session() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        load_record(_record(findings=["varicosities", "recent-surgical-incision"]))
    [issue] = caught.value.issues
    assert (issue.details, issue.expression) == ("E_CONTRAINDICATION", "screening.findings[1]")
    assert "recent-surgical-incision" in issue.diagnostics
    assert "override_reason" in issue.diagnostics
    ok = load_record(_record(findings=["recent-surgical-incision"], override_reason="other leg"))
    assert _components(_screening(to_fhir(ok)))["override-reason"] == "other leg"


def test_cancelled_session_keeps_its_screening() -> None:
    data = _record("good-08", findings=["active-infection"], consent_obtained=False)
    record = load_record(data)
    obs = _screening(to_fhir(record))
    assert obs["status"] == "final"
    assert canonical_for_roundtrip(from_fhir(to_fhir(record))) == canonical_for_roundtrip(record)


@pytest.mark.parametrize(
    "screening",
    [
        {},
        {"findings": ["malignancy-over-area", "varicosities"], "override_reason": "far away"},
        {"findings": ["varicosities"], "anticoagulant_therapy": False, "skin_intact": False},
    ],
)
def test_screening_round_trips_and_validates(screening: dict[str, Any]) -> None:
    index = load_profiles(ROOT / "profiles")
    record = load_record(_record(**screening))
    for settings in (MappingSettings(), MappingSettings(strip_profiles=True)):
        back = from_fhir(to_fhir(record, settings))
        assert back.screening == record.screening
        assert canonical_for_roundtrip(back) == canonical_for_roundtrip(record)
    assert [i for i in validate(to_fhir(record), index) if i.is_error] == []


def test_profile_rejects_an_unknown_item_and_a_missing_component() -> None:
    index = load_profiles(ROOT / "profiles")
    bundle = to_fhir(load_record(_record()))
    bad = copy.deepcopy(bundle)
    _screening(bad)["component"][0]["code"]["coding"][0]["code"] = "bruising"
    errors = [i for i in validate(bad, index) if i.is_error]
    assert errors
    assert all("component" in (i.expression or "") for i in errors)
    bare = copy.deepcopy(bundle)
    del _screening(bare)["component"]
    assert [i for i in validate(bare, index) if i.is_error]


def test_reverse_rejects_an_unknown_or_repeated_component() -> None:
    bundle = to_fhir(load_record(_record()))
    obs = _screening(bundle)
    obs["component"].append(copy.deepcopy(obs["component"][0]))
    with pytest.raises(MappingError) as caught:
        from_fhir(bundle)
    assert caught.value.issues[0].expression == "Observation.component[12]"
