"""record -> FHIR transaction Bundle for every good example: docs/push.md#one-transaction,
docs/decisions.md#identifiers, docs/decisions.md#statuses and
docs/decisions.md#d1, #d5 to #d7, #d11, #d22."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_iastm.mapping import MappingSettings, check_structure, from_fhir, to_fhir
from fhir_iastm.mapping.ids import conditional_url, fhir_escape, identifier_query
from fhir_iastm.mapping.roundtrip import canonical_for_roundtrip
from fhir_iastm.mapping.structure import _model
from fhir_iastm.records import record_hash
from fhir_iastm.records.model import Billing, CptLine
from tests.mapping.support import (
    BASE,
    GOOD,
    as_searchset,
    by_profile,
    good,
    resources,
    session_procedure,
)

SESSION_OWNED = {"Encounter", "Condition", "Procedure", "Observation"}
SHARED = {"Organization", "Practitioner", "Patient"}

#: Expected entries per example (docs/push.md#one-transaction), counted by hand from the example
#: files:
#: (total, Conditions, Procedures incl. adjuncts, pain, ROM, PROM Observations)
COUNTS = {
    "good-01": (10, 1, 3, 2, 0, 0),
    "good-02": (10, 1, 2, 2, 0, 1),
    "good-03": (11, 1, 2, 2, 0, 0),  # + 2 expected-effect findings
    "good-04": (11, 2, 2, 2, 0, 1),
    "good-05": (11, 1, 3, 2, 0, 0),  # + 1 expected-effect finding
    "good-06": (16, 3, 3, 2, 3, 1),
    "good-07": (8, 1, 1, 2, 0, 0),
    "good-08": (7, 2, 1, 0, 0, 0),
    "good-09": (12, 1, 2, 2, 0, 1),  # 2.0: + 1 expected-effect finding + the screening
}


@pytest.fixture(scope="module", params=GOOD)
def mapped(request: pytest.FixtureRequest) -> tuple[str, object, dict]:
    record = good(request.param)
    return request.param[:7], record, to_fhir(record)


def test_bundle_and_every_resource_parse_as_r4b(mapped: tuple) -> None:
    _, _, bundle = mapped
    Bundle.model_validate(bundle)
    for resource in resources(bundle):
        _model(resource["resourceType"]).model_validate(resource)
    assert check_structure(bundle) == []


def test_round_trip_is_lossless(mapped: tuple) -> None:
    _, record, bundle = mapped
    assert canonical_for_roundtrip(from_fhir(bundle)) == canonical_for_roundtrip(record)


def test_resource_counts_follow_section_2_1(mapped: tuple) -> None:
    name, _, bundle = mapped
    total, conditions, procedures, pain, rom, prom = COUNTS[name]
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    assert len(bundle["entry"]) == total
    for t in SHARED | {"Encounter"}:
        assert len(resources(bundle, t)) == 1
    assert len(resources(bundle, "Condition")) == conditions
    assert len(resources(bundle, "Procedure")) == procedures
    assert len(by_profile(bundle, "iastm-pain-observation")) == pain
    assert len(by_profile(bundle, "iastm-rom-observation")) == rom
    assert len(by_profile(bundle, "iastm-prom-observation")) == prom
    findings = {"good-03": 2, "good-05": 1, "good-09": 1}.get(name[:7], 0)
    assert len(by_profile(bundle, "iastm-effect-observation")) == findings
    assert "Provenance" not in {r["resourceType"] for r in resources(bundle)}


def test_write_verbs_and_identity(mapped: tuple) -> None:
    _, record, bundle = mapped
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert len(set(urls)) == len(urls)
    for entry in bundle["entry"]:
        resource, request = entry["resource"], entry["request"]
        assert "id" not in resource
        assert re.fullmatch(
            r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
            r"[0-9a-f]{12}",
            entry["fullUrl"],
        )
        if resource["resourceType"] in SHARED:
            assert request["method"] == "POST"
            assert request["url"] == resource["resourceType"]
            assert re.fullmatch(r"identifier=[^|&]+\|[^|&]+", request["ifNoneExist"])
        else:
            assert request["method"] == "PUT"
            assert "ifNoneExist" not in request
            assert request["url"].startswith(resource["resourceType"] + "?identifier=")
    proc_entry = next(e for e in bundle["entry"] if e["resource"] is session_procedure(bundle))
    assert proc_entry["request"]["url"] == (
        "Procedure?identifier=https%3A%2F%2Fiastm.example.org%2Ffhir%2Fsid%2Fiastm-session|"
        + record.session_id
    )
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, BASE)
    assert (
        proc_entry["fullUrl"]
        == f"urn:uuid:{uuid.uuid5(namespace, record.session_id + '/procedure')}"
    )


def test_references_point_at_entries(mapped: tuple) -> None:
    _, _, bundle = mapped
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    refs = re.findall(r'"reference": "([^"]+)"', json.dumps(bundle))
    assert refs
    assert all(ref in full_urls for ref in refs)


def test_source_extensions_on_every_session_derived_resource(mapped: tuple) -> None:
    _, record, bundle = mapped
    version_url = f"{BASE}/StructureDefinition/source-record-version"
    hash_url = f"{BASE}/StructureDefinition/source-record-hash"
    for resource in resources(bundle):
        urls = [e["url"] for e in resource.get("extension", ())]
        if resource["resourceType"] in SESSION_OWNED:
            ext = {e["url"]: e for e in resource["extension"]}
            assert ext[version_url] == {
                "url": version_url,
                "valuePositiveInt": record.record_version,
            }
            assert ext[hash_url] == {"url": hash_url, "valueString": record_hash(record)}
        else:
            assert version_url not in urls
            assert hash_url not in urls


def test_meta_profile_lists_only_our_profiles(mapped: tuple) -> None:
    _, _, bundle = mapped
    for resource in resources(bundle):
        (profile,) = resource["meta"]["profile"]
        assert profile.startswith(f"{BASE}/StructureDefinition/iastm-")
        assert "meta" in resource
        assert set(resource["meta"]) == {"profile"}


def test_deterministic_bytes(mapped: tuple) -> None:
    _, record, bundle = mapped
    again = to_fhir(replace(record))
    assert json.dumps(again, sort_keys=False) == json.dumps(bundle, sort_keys=False)


def test_adjuncts_are_part_of_the_session_with_reasons(mapped: tuple) -> None:
    _, _, bundle = mapped
    proc_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is session_procedure(bundle)
    )
    condition_urls = [
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
    ]
    for adjunct in by_profile(bundle, "iastm-adjunct-procedure"):
        assert adjunct["partOf"] == [{"reference": proc_url}]
        assert adjunct["reasonReference"] == [{"reference": u} for u in condition_urls]
        assert adjunct["status"] == session_procedure(bundle)["status"]
    for obs in resources(bundle, "Observation"):
        assert obs["partOf"] == [{"reference": proc_url}]


# ---------------------------------------------------------------- statuses
# (docs/decisions.md#statuses, docs/decisions.md#d22)


def test_completed_statuses() -> None:
    bundle = to_fhir(good("good-01"))
    assert resources(bundle, "Encounter")[0]["status"] == "finished"
    assert {p["status"] for p in resources(bundle, "Procedure")} == {"completed"}
    assert {o["status"] for o in resources(bundle, "Observation")} == {"final"}
    proc = session_procedure(bundle)
    assert proc["performedPeriod"] == {
        "start": "2025-03-04T09:00:00-06:00",
        "end": "2025-03-04T09:40:00-06:00",
    }
    assert "statusReason" not in proc
    assert proc["note"] == [{"text": "Tolerated well; immediate reduction in grip pain reported."}]


def test_entered_in_error_retracts_everything() -> None:
    record = good("good-07")
    bundle = to_fhir(record)
    assert resources(bundle, "Encounter")[0]["status"] == "entered-in-error"
    assert {p["status"] for p in resources(bundle, "Procedure")} == {"entered-in-error"}
    assert {o["status"] for o in resources(bundle, "Observation")} == {"entered-in-error"}
    for condition in resources(bundle, "Condition"):
        assert "clinicalStatus" not in condition  # R4 con-5
        assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    proc = session_procedure(bundle)
    assert proc["statusReason"] == {"text": record.status_reason}
    assert "note" not in proc  # docs/decisions.md#d22: note holds only notes


def test_cancelled_is_not_done_without_performed_or_observations() -> None:
    record = good("good-08")
    bundle = to_fhir(record)
    encounter = resources(bundle, "Encounter")[0]
    assert encounter["status"] == "cancelled"
    assert encounter["period"] == {"start": record.session.start}
    proc = session_procedure(bundle)
    assert proc["status"] == "not-done"
    assert proc["statusReason"] == {"text": "Patient cancelled same day (acute illness)."}
    assert not any(k.startswith("performed") for k in proc)
    assert resources(bundle, "Observation") == []
    assert len(proc["reasonReference"]) == 2
    assert {c["clinicalStatus"]["coding"][0]["code"] for c in resources(bundle, "Condition")} == {
        "active"
    }


def test_cancelled_without_conditions_when_switched_off() -> None:
    """issue 10 #8: no Condition resource, no Procedure.reasonReference; the diagnoses are
    contained in the Encounter and recorded_at is on the Procedure, so unmap is lossless
    (docs/decisions.md#cancelled-conditions)."""
    record = good("good-08")
    bundle = to_fhir(record, MappingSettings(emit_conditions_for_cancelled=False))
    assert resources(bundle, "Condition") == []
    assert "reasonReference" not in session_procedure(bundle)
    encounter = resources(bundle, "Encounter")[0]
    contained = encounter["contained"]
    assert [c["resourceType"] for c in contained] == ["Condition"] * len(record.conditions)
    assert [c["id"] for c in contained] == ["condition-1", "condition-2"]
    assert [c["code"]["coding"][0]["code"] for c in contained] == [
        c.icd10cm for c in record.conditions
    ]
    assert [d["condition"]["reference"] for d in encounter["diagnosis"]] == [
        "#condition-1",
        "#condition-2",
    ]
    url = f"{BASE}/StructureDefinition/source-recorded-at"
    [recorded] = [e for e in session_procedure(bundle)["extension"] if e["url"] == url]
    assert recorded["valueDateTime"] == record.recorded_at
    back = from_fhir(bundle)
    assert canonical_for_roundtrip(back) == canonical_for_roundtrip(record)
    assert canonical_for_roundtrip(from_fhir(as_searchset(bundle))) == canonical_for_roundtrip(
        record
    )
    with_conditions = to_fhir(record)
    assert url not in json.dumps(with_conditions)
    assert "contained" not in resources(with_conditions, "Encounter")[0]
    assert from_fhir(with_conditions).recorded_at == record.recorded_at


def test_contained_primary_condition_keeps_its_rank() -> None:
    record = good("good-08")
    assert [c.is_primary for c in record.conditions][0] is True
    bundle = to_fhir(record, MappingSettings(emit_conditions_for_cancelled=False))
    [diagnosis, *_] = resources(bundle, "Encounter")[0]["diagnosis"]
    assert diagnosis == {"condition": {"reference": "#condition-1"}, "rank": 1}
    back = from_fhir(bundle)
    assert [c.is_primary for c in back.conditions][0] is True


# ---------------------------------------------------------------- settings


def test_claim_us_core_adds_us_core_profiles() -> None:
    bundle = to_fhir(good("good-06"), MappingSettings(claim_us_core=True))
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/"
    assert session_procedure(bundle)["meta"]["profile"] == [
        f"{BASE}/StructureDefinition/iastm-procedure",
        us_core + "us-core-procedure",
    ]
    (rom, *_) = by_profile(bundle, "iastm-rom-observation")
    assert rom["meta"]["profile"][1] == us_core + "us-core-observation-clinical-result"


def test_include_cpt_sends_the_billing_lines_without_display() -> None:
    """issue 10 #11: the CPT codings are the record's billing lines (not a fixed 97140/97110),
    with their units, and billing round-trips."""
    record = good("good-01")
    assert record.billing is not None
    plain, cpt = to_fhir(record), to_fhir(record, MappingSettings(include_cpt=True))
    cpt_system = "http://www.ama-assn.org/go/cpt"
    assert cpt_system not in json.dumps(plain)
    units = f"{BASE}/StructureDefinition/iastm-cpt-units"
    sent = [c for c in session_procedure(cpt)["code"]["coding"] if c["system"] == cpt_system]
    assert sent == [
        {"extension": [{"url": units, "valuePositiveInt": line.units}], "system": cpt_system,
         "code": line.code}
        for line in record.billing.cpt_lines
    ]  # fmt: skip
    for adjunct in by_profile(cpt, "iastm-adjunct-procedure"):
        assert cpt_system not in json.dumps(adjunct)
    other = replace(record, billing=Billing((CptLine("97110", 2), CptLine("97140", 1))))
    back = from_fhir(to_fhir(other, MappingSettings(include_cpt=True)))
    assert back.billing == other.billing
    assert from_fhir(plain).billing is None  # no licence, no CPT: billing stays in the clinic
    both = [canonical_for_roundtrip(r, billing=True) for r in (back, other)]
    assert both[0] == both[1]
    no_billing = to_fhir(replace(record, billing=None), MappingSettings(include_cpt=True))
    assert cpt_system not in json.dumps(no_billing)


def test_canonical_base_is_a_setting() -> None:
    other = "https://pt.example.com/fhir"
    bundle = to_fhir(good("good-03"), MappingSettings(canonical_base=other + "/"))
    text = json.dumps(bundle)
    assert "iastm.example.org" not in text
    assert f"{other}/StructureDefinition/iastm-procedure" in text
    assert from_fhir(bundle, MappingSettings(canonical_base=other)).session_id == "RBPT-2025-000518"


def test_precomputed_hash_is_used() -> None:
    bundle = to_fhir(good("good-03"), MappingSettings(record_hash="ab" * 32))
    assert '"valueString": "' + "ab" * 32 in json.dumps(bundle)


# ---------------------------------------------------------------- conditional URLs
# (docs/decisions.md#d16)


def test_conditional_urls_escape_then_percent_encode() -> None:
    assert fhir_escape("a\\b,c$d|e") == "a\\\\b\\,c\\$d\\|e"
    assert identifier_query("http://x.org/sid", "A|B,C") == (
        "identifier=http%3A%2F%2Fx.org%2Fsid|A%5C%7CB%5C%2CC"
    )
    assert conditional_url("Condition", "s", "a b&c=d") == "Condition?identifier=s|a%20b%26c%3Dd"


# ---------------------------------------------------------------- field details (docs/mapping.md)


def test_bilateral_and_qualified_body_sites() -> None:
    lat_url = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
    loc_url = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-body-location-qualifier"
    (site,) = session_procedure(to_fhir(good("good-04")))["bodySite"]
    assert site["extension"] == [
        {
            "url": lat_url,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "51440002",
                        "display": "Right and left",
                    }
                ]
            },
        }
    ]
    assert site["text"] == "bilateral patellar tendon"
    (site,) = session_procedure(to_fhir(good("good-05")))["bodySite"]
    assert [c["code"] for c in site["coding"]] == ["hamstring", "68367000"]
    assert site["extension"][1] == {
        "url": loc_url,
        "valueCodeableConcept": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "255551008", "display": "Posterior"}
            ]
        },
    }


def test_rom_and_prom_observations() -> None:
    bundle = to_fhir(good("good-06"))
    ext = f"{BASE}/StructureDefinition/"
    rom = next(
        o
        for o in by_profile(bundle, "iastm-rom-observation")
        if o["identifier"][0]["value"].endswith("knee-extension-right-active-post")
    )
    assert rom["valueQuantity"] == {
        "value": -6,
        "unit": "deg",
        "system": "http://unitsofmeasure.org",
        "code": "deg",
    }
    assert rom["effectiveDateTime"] == "2025-05-20T10:50:00-05:00"  # post -> session.end
    assert {"url": ext + "iastm-measurement-timing", "valueCode": "post"} in rom["extension"]
    assert {"url": ext + "iastm-rom-mode", "valueCode": "active"} in rom["extension"]
    assert rom["bodySite"]["coding"][0]["code"] == "49076000"
    (prom,) = by_profile(bundle, "iastm-prom-observation")
    assert [c["coding"][0]["code"] for c in prom["category"]] == ["survey", "functional-status"]
    assert prom["code"]["coding"][0]["code"] == "lefs-total"
    assert prom["valueQuantity"]["value"] == 41
    assert prom["valueQuantity"]["code"] == "{score}"


def test_encounter_diagnosis_ranks() -> None:
    bundle = to_fhir(good("good-06"))
    ranks = [d["rank"] for d in resources(bundle, "Encounter")[0]["diagnosis"]]
    assert ranks == [1, 2, 3]
    record = good("good-06")
    no_primary = replace(
        record, conditions=tuple(replace(c, is_primary=None) for c in record.conditions)
    )
    diagnoses = resources(to_fhir(no_primary), "Encounter")[0]["diagnosis"]
    assert all("rank" not in d for d in diagnoses)
    assert len(diagnoses) == 3


# ---------------------------------------------------------------- optional fields round-trip


def test_optional_fields_round_trip() -> None:
    from fhir_iastm.records.model import Address, OutcomeMeasure, PsfsItem, Technique

    record = good("good-06")
    rich = replace(
        record,
        technique=Technique("iastm-other", "Scraping with a custom titanium tool"),
        patient=replace(
            record.patient,
            phone="+1-217-555-0199",
            email="pt@example.org",
            address=Address(("1 Elm St", "Apt 2"), "Springfield", "IL", "62704"),
        ),
        therapist=replace(record.therapist, license_state=None, credentials=()),
        session=replace(record.session, planned_sessions=None, plan_of_care_id="POC-1"),
        outcome_measures=(
            OutcomeMeasure("PSFS", 4.5, (PsfsItem("Stairs", 3), PsfsItem("Kneeling", 6))),
        ),
    )
    bundle = to_fhir(rich)
    assert check_structure(bundle) == []
    proc = session_procedure(bundle)
    assert proc["code"]["text"] == (
        "Instrument-assisted soft tissue mobilization (Scraping with a custom titanium tool)"
    )
    assert proc["basedOn"] == [
        {"type": "CarePlan", "identifier": {"system": f"{BASE}/sid/plan-of-care", "value": "POC-1"}}
    ]
    (prom,) = by_profile(bundle, "iastm-prom-observation")
    assert [c["code"]["text"] for c in prom["component"]] == ["Stairs", "Kneeling"]
    patient = resources(bundle, "Patient")[0]
    assert "country" not in patient["address"][0]
    back = from_fhir(bundle)
    assert canonical_for_roundtrip(back) == canonical_for_roundtrip(rich)
    assert back.therapist.license_number == record.therapist.license_number
    assert back.therapist.license_state is None


def test_duplicate_full_urls_or_request_urls_are_refused() -> None:
    from fhir_iastm.errors import MappingError
    from fhir_iastm.mapping.bundle import assert_distinct

    entries = to_fhir(good("good-03"))["entry"]
    assert_distinct(entries)
    with pytest.raises(MappingError) as info:
        assert_distinct([*entries, entries[4]])
    assert info.value.issues[0].details == "E_DUPLICATE_KEY"
    assert info.value.issues[0].expression == f"Bundle.entry[{len(entries)}]"


def test_check_structure_reports_fhirpath_locations() -> None:
    bundle = to_fhir(good("good-03"))
    bundle["entry"][3]["resource"]["status"] = 42
    bundle["entry"][5]["resource"]["bodySite"][0]["coding"][0]["system"] = ["not", "a", "uri"]
    paths = [i.expression for i in check_structure(bundle)]
    assert "Bundle.entry[3].resource.status" in paths
    assert any(p.startswith("Bundle.entry[5].resource.bodySite[0].coding[0]") for p in paths)
