"""Record contract 2.0 (issue 10 #4, #13): IASTM minutes on the IASTM Procedure, adjunct minutes
on theirs, the visit on the Encounter only; visit kind; participant type; lossless round trip."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_iastm.errors import MappingError
from fhir_iastm.mapping import MappingSettings, canonical_for_roundtrip, from_fhir, to_fhir
from fhir_iastm.profiles import load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import validate
from tests.mapping.support import resources
from tests.strategies import example
from tests.validation.test_laterality import ROOT

SD = "https://iastm.example.org/fhir/StructureDefinition/"


def _v2(**changes: Any) -> dict[str, Any]:
    data = example("good-01")  # visit 09:00-09:40, stretching 8 + strengthening 12 min
    data.update({"schema_version": "2.0", "visit_kind": "treatment", **changes})
    data["session"]["iastm_minutes"] = 15
    return data


def _ext(resource: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [e for e in resource["extension"] if e["url"] == SD + name]
    return found


def test_each_procedure_has_its_own_time_and_the_visit_is_the_encounters() -> None:
    bundle = to_fhir(load_record(_v2()))
    [encounter] = resources(bundle, "Encounter")
    assert encounter["period"] == {
        "start": "2025-03-04T09:00:00-06:00", "end": "2025-03-04T09:40:00-06:00"
    }  # fmt: skip
    assert encounter["length"]["value"] == 40
    procs = {
        p["identifier"][-1]["value"].split("/", 1)[1]: p for p in resources(bundle, "Procedure")
    }
    assert procs["procedure"]["performedPeriod"] == {
        "start": "2025-03-04T09:00:00-06:00", "end": "2025-03-04T09:15:00-06:00"
    }  # fmt: skip
    assert _ext(procs["procedure"], "iastm-duration")["valueDuration"]["value"] == 15
    assert _ext(procs["procedure"], "source-schema-version")["valueString"] == "2.0"
    assert procs["adjunct/stretching"]["performedPeriod"] == {
        "start": "2025-03-04T09:15:00-06:00", "end": "2025-03-04T09:23:00-06:00"
    }  # fmt: skip
    assert procs["adjunct/strengthening"]["performedPeriod"] == {
        "start": "2025-03-04T09:23:00-06:00", "end": "2025-03-04T09:35:00-06:00"
    }  # fmt: skip
    minutes = sum(_ext(p, "iastm-duration")["valueDuration"]["value"] for p in procs.values())
    assert minutes == 35 <= encounter["length"]["value"]


def test_visit_kind_and_participant_type() -> None:
    [encounter] = resources(to_fhir(load_record(_v2(visit_kind="evaluation"))), "Encounter")
    codes = [c["code"] for c in encounter["type"][0]["coding"]]
    assert codes == ["evaluation"]
    [treatment] = resources(to_fhir(load_record(_v2())), "Encounter")
    assert [c["code"] for c in treatment["type"][0]["coding"]] == ["treatment", "390906007"]
    assert encounter["participant"][0]["type"][0]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "PPRF",
            "display": "primary performer",
        }
    ]


def test_version_2_round_trips_and_validates() -> None:
    index = load_profiles(ROOT / "profiles")
    for data in (_v2(), _v2(visit_kind="re-evaluation"), _v2(visit_kind=None)):
        data = {k: v for k, v in data.items() if v is not None}
        record = load_record(data)
        for settings in (MappingSettings(), MappingSettings(performed_as_datetime=True)):
            bundle = to_fhir(record, settings)
            back = from_fhir(bundle)
            assert back.schema_version == "2.0"
            assert canonical_for_roundtrip(back) == canonical_for_roundtrip(record)
        assert [i for i in validate(to_fhir(record), index) if i.is_error] == []


def test_version_1_keeps_the_visit_period_on_every_procedure() -> None:
    data = example("good-01")
    bundle = to_fhir(load_record(copy.deepcopy(data)))
    for proc in resources(bundle, "Procedure"):
        assert proc["performedPeriod"] == {
            "start": data["session"]["start"], "end": data["session"]["end"]
        }  # fmt: skip
        assert not [e for e in proc["extension"] if e["url"] == SD + "source-schema-version"]
    assert from_fhir(bundle).schema_version == "1.0"


def test_condition_specific_measures_use_verified_loinc_or_our_codes() -> None:
    data = _v2()
    data["outcome_measures"] = [
        {"instrument": "KOOS-JR", "score": 50.012},
        {"instrument": "HOOS-JR", "score": 61.567},
        {"instrument": "PRTEE", "score": 42.5},
        {"instrument": "VISA-P", "score": 55},
    ]
    record = load_record(data)
    bundle = to_fhir(record)
    codes = {
        o["code"]["text"]: o["code"]["coding"][0]["code"]
        for o in resources(bundle, "Observation")
        if o["identifier"][0]["value"].split("/", 2)[2].startswith("prom/")
    }
    assert codes == {
        "KOOS-JR": "82332-8", "HOOS-JR": "82323-7", "PRTEE": "prtee-total", "VISA-P": "visa-p-total"
    }  # fmt: skip
    assert canonical_for_roundtrip(from_fhir(bundle)) == canonical_for_roundtrip(record)
    index = load_profiles(ROOT / "profiles")
    assert [i for i in validate(bundle, index) if i.is_error] == []


def test_condition_linked_to_its_treated_site() -> None:
    """issue 10 #7: Condition.bodySite is the treated site itself, read back as site_index."""
    index = load_profiles(ROOT / "profiles")
    data = _v2()
    data["conditions"][0]["site_index"] = 0
    record = load_record(data)
    bundle = to_fhir(record)
    [condition] = resources(bundle, "Condition")
    [site] = condition["bodySite"]
    [procedure] = [p for p in resources(bundle, "Procedure") if "partOf" not in p]
    assert site == procedure["bodySite"][0]
    assert site["coding"][0]["code"] == "elbow-lateral"
    assert site["text"] == "right lateral elbow"
    back = from_fhir(bundle)
    assert back.conditions[0].site_index == 0
    assert canonical_for_roundtrip(back) == canonical_for_roundtrip(record)
    assert [i for i in validate(bundle, index) if i.is_error] == []
    unlinked = to_fhir(load_record(_v2()))
    [side_only] = resources(unlinked, "Condition")[0]["bodySite"]
    assert "coding" not in side_only
    assert from_fhir(unlinked).conditions[0].site_index is None
    wrong = copy.deepcopy(bundle)
    resources(wrong, "Condition")[0]["bodySite"][0]["coding"][0]["code"] = "knee"
    with pytest.raises(MappingError) as caught:
        from_fhir(wrong)
    assert caught.value.issues[0].expression == "Condition.bodySite[0]"
