"""records: one table row per rule of docs/validation.md#record-errors and docs/decisions.md#d16 to
#d22.

Each row starts from a good example, applies JSON Pointer edits, and lists the exact (code, path)
pairs expected; an empty list means the edit is valid. Codes and paths only, never message text.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.strategies import DELETE, example, pointer_to_path, with_changes

from fhir_iastm.errors import InvalidRecordError
from fhir_iastm.records.fields import CATALOGUE
from fhir_iastm.records import check_record, load_record
from fhir_iastm.records.cross_field import icd_side, snomed_for_icd

G1, G2, G3, G4, G5, G6, G7, G8 = (f"good-0{i}" for i in range(1, 9))
Row = tuple[str, dict[str, Any], list[str]]  # example, edits, ["CODE /json/pointer", ...]


OM0 = "/outcome_measures/0/score"


def _psfs(score: float, items: list[int]) -> dict[str, Any]:
    activities = [{"activity": f"task {i}", "score": x} for i, x in enumerate(items)]
    return {"instrument": "PSFS", "score": score, "items": activities}


def _case(base: str, edits: dict[str, Any], *want: str) -> Any:
    label = f"{base}:{','.join(edits)}={'+'.join(w.split()[0] for w in want) or 'ok'}"
    return pytest.param(base, edits, list(want), id=label[:120])


TYPES = [
    _case(G1, {"/pain/post": "7"}, "E_TYPE /pain/post"),
    _case(G1, {"/pain/post": 6.5}, "E_TYPE /pain/post"),
    _case(G1, {"/pain/pre": 7.0}, "E_TYPE /pain/pre"),
    _case(G1, {"/pain/post": True}, "E_TYPE /pain/post"),
    _case(G1, {"/record_version": "1"}, "E_TYPE /record_version"),
    _case(G1, {"/record_version": True}, "E_TYPE /record_version"),
    _case(G1, {"/session/duration_min": 40.0}, "E_TYPE /session/duration_min"),
    _case(G1, {"/conditions/0/is_primary": 1}, "E_TYPE /conditions/0/is_primary"),
    _case(G3, {"/adverse_effects/0/expected": "yes"}, "E_TYPE /adverse_effects/0/expected"),
    _case(G3, {"/adverse_effects/0/site_index": 0.0}, "E_TYPE /adverse_effects/0/site_index"),
    _case(G6, {"/rom/0/degrees": "98"}, "E_TYPE /rom/0/degrees"),
    _case(G6, {"/rom/0/degrees": float("nan")}, "E_TYPE /rom/0/degrees"),
    _case(G6, {"/rom/0/degrees": False}, "E_TYPE /rom/0/degrees"),
    _case(G1, {"/clinic/npi": 1234567893}, "E_TYPE /clinic/npi"),
    _case(G1, {"/patient/given_names": "Thomas"}, "E_TYPE /patient/given_names"),
    _case(G1, {"/patient/given_names/0": ["Thomas"]}, "E_TYPE /patient/given_names/0"),
    _case(G1, {"/pain": [6, 3]}, "E_TYPE /pain"),
    _case(G1, {"/treatment_sites": {"site": "knee"}}, "E_TYPE /treatment_sites"),
    _case(G1, {"/instruments/0": "steel-single-bevel"}, "E_TYPE /instruments/0"),
    _case(G1, {"/notes": 5}, "E_TYPE /notes"),
    _case(G1, {"/status": None}, "E_REQUIRED /status"),
]

REQUIRED = [
    _case(G1, {"/patient": DELETE}, "E_REQUIRED /patient"),
    _case(G1, {"/session/start": DELETE}, "E_REQUIRED /session/start"),
    _case(G1, {"/patient/given_names": []}, "E_REQUIRED /patient/given_names"),
    _case(G1, {"/treatment_sites": []}, "E_REQUIRED /treatment_sites"),
    _case(G1, {"/conditions": []}, "E_REQUIRED /conditions"),
    _case(G1, {"/patient/family_name": ""}, "E_REQUIRED /patient/family_name"),
    _case(G1, {"/patient/family_name": " \t "}, "E_REQUIRED /patient/family_name"),
    _case(G1, {"/clinic/npi": None}, "E_REQUIRED /clinic/npi"),
    _case(G1, {"/conditions/0/text": DELETE}, "E_REQUIRED /conditions/0/text"),
    _case(G1, {"/pain/scale": DELETE}, "E_REQUIRED /pain/scale"),
    _case(G1, {"/adjunct_therapies/0/minutes": DELETE}, "E_REQUIRED /adjunct_therapies/0/minutes"),
    # conditional requirements (docs/validation.md#record-validation,
    # docs/validation.md#record-validation, docs/validation.md#record-validation,
    # docs/validation.md#record-validation)
    _case(G1, {"/pain/pre": DELETE}, "E_REQUIRED /pain/pre"),
    _case(G7, {"/pain/pre": DELETE}),
    _case(G1, {"/pain": DELETE}),
    _case(G8, {"/status_reason": DELETE}, "E_REQUIRED /status_reason"),
    _case(G7, {"/status_reason": DELETE}, "E_REQUIRED /status_reason"),
    _case(G1, {"/session/end": DELETE, "/session/duration_min": DELETE}, "E_REQUIRED /session/end"),
    _case(G7, {"/session/end": DELETE, "/session/duration_min": DELETE}, "E_REQUIRED /session/end"),
    _case(G1, {"/technique": {"code": "iastm-other"}}, "E_REQUIRED /technique/text"),
    _case(G1, {"/technique": {"code": "iastm-other", "text": "Ceramic scraping"}}),
    _case(
        G1, {"/conditions/0/clinical_status": DELETE}, "E_REQUIRED /conditions/0/clinical_status"
    ),
    _case(
        G1,
        {
            "/conditions/0/verification_status": "entered-in-error",
            "/conditions/0/clinical_status": DELETE,
        },
    ),
]

FORMATS = [
    _case(G1, {"/session_id": "RBPT_2025"}, "E_FORMAT /session_id"),
    _case(G1, {"/session_id": "-RBPT"}, "E_FORMAT /session_id"),
    _case(G1, {"/session_id": "A" * 64}),
    _case(G1, {"/clinic/clinic_id": "RBPT 01"}, "E_FORMAT /clinic/clinic_id"),
    _case(G1, {"/patient/mrn": "MRN/100245"}, "E_FORMAT /patient/mrn"),
    _case(G1, {"/patient/mrn": "MRN_100.245-a"}),
    _case(G1, {"/conditions/0/condition_id": "DX|01"}, "E_FORMAT /conditions/0/condition_id"),
    _case(G1, {"/session/start": "2025-03-04T09:00:00"}, "E_FORMAT /session/start"),
    _case(G1, {"/session/start": "2025-03-04 09:00:00-06:00"}, "E_FORMAT /session/start"),
    _case(G1, {"/session/start": "2025-03-04T09:00:00+15:00"}, "E_FORMAT /session/start"),
    _case(G1, {"/session/start": "2025-03-04T09:00-06:00"}, "E_FORMAT /session/start"),
    _case(G1, {"/session/start": "2025-02-30T09:00:00-06:00"}, "E_FORMAT /session/start"),
    _case(G1, {"/session/end": "2025-03-04T24:00:00-06:00"}, "E_FORMAT /session/end"),
    _case(G1, {"/recorded_at": "2025-03-04T10:05:00.1234567890Z"}, "E_FORMAT /recorded_at"),
    _case(G1, {"/recorded_at": "2025-03-04T10:05:00.123456789+14:00"}),
    _case(G1, {"/recorded_at": "2025-03-04T10:05:00z"}, "E_FORMAT /recorded_at"),
    _case(G3, {"/last_modified": "yesterday"}, "E_FORMAT /last_modified"),
    _case(G1, {"/patient/birth_date": "1978-4-12"}, "E_FORMAT /patient/birth_date"),
    _case(G1, {"/patient/birth_date": "1978-02-29"}, "E_FORMAT /patient/birth_date"),
    _case(G1, {"/conditions/0/onset_date": "2024-13"}, "E_FORMAT /conditions/0/onset_date"),
    _case(G1, {"/conditions/0/onset_date": "2024"}),
    _case(
        G1,
        {"/conditions/0/onset_date": "2024-11-15T00:00:00Z"},
        "E_FORMAT /conditions/0/onset_date",
    ),
    _case(G1, {"/conditions/0/icd10cm": "m77.11"}, "E_FORMAT /conditions/0/icd10cm"),
    _case(G1, {"/conditions/0/icd10cm": "M7711"}, "E_FORMAT /conditions/0/icd10cm"),
    _case(G1, {"/conditions/0/icd10cm": " M77.11"}, "E_FORMAT /conditions/0/icd10cm"),
    _case(G1, {"/notes": "x" * 4001}, "E_FORMAT /notes"),
    _case(G1, {"/notes": "tab\tand\nnewline are fine"}),
    _case(G1, {"/notes": "NUL \x00 is not"}, "E_FORMAT /notes"),
    _case(G1, {"/notes": ""}, "E_FORMAT /notes"),
    _case(G1, {"/clinic/address/postal_code": "6270"}, "E_FORMAT /clinic/address/postal_code"),
    _case(G1, {"/patient/email": "not-an-email"}, "E_FORMAT /patient/email"),
    _case(G1, {"/record_version": 0}, "E_FORMAT /record_version"),
    _case(G1, {"/session/session_number": 0}, "E_FORMAT /session/session_number"),
    _case(G1, {"/session/planned_sessions": -1}, "E_FORMAT /session/planned_sessions"),
    _case(G1, {"/adjunct_therapies/0/minutes": 0}, "E_FORMAT /adjunct_therapies/0/minutes"),
    _case(G1, {"/billing/cpt_lines/0/code": "9714"}, "E_FORMAT /billing/cpt_lines/0/code"),
    _case(G1, {"/billing/cpt_lines/0/units": 0}, "E_FORMAT /billing/cpt_lines/0/units"),
    _case(
        G2,
        {"/outcome_measures/0/items": [{"activity": "Lift", "score": 5}]},
        "E_FORMAT /outcome_measures/0/items",
    ),
]

RANGES = [
    _case(G1, {"/pain/post": 11}, "E_RANGE /pain/post"),
    _case(G1, {"/pain/pre": -1}, "E_RANGE /pain/pre"),
    _case(G1, {"/pain/pre": 0, "/pain/post": 10}),
    _case(G6, {"/rom/0/degrees": 181}, "E_RANGE /rom/0/degrees"),
    _case(G6, {"/rom/0/degrees": -30.5}, "E_RANGE /rom/0/degrees"),
    _case(G6, {"/rom/0/degrees": -30, "/rom/1/degrees": 180, "/rom/2/degrees": 12.5}),
    _case(G6, {"/outcome_measures/0/score": 81}, "E_RANGE /outcome_measures/0/score"),
    _case(G6, {"/outcome_measures/0/score": 40.5}, "E_RANGE /outcome_measures/0/score"),
    _case(G6, {"/outcome_measures/0/score": 0}),
    _case(G2, {"/outcome_measures/0/score": 100.5}, "E_RANGE /outcome_measures/0/score"),
    _case(G2, {"/outcome_measures/0/score": -0.1}, "E_RANGE /outcome_measures/0/score"),
    _case(G2, {"/outcome_measures/0/score": 100}),
    _case(
        G2,
        {"/outcome_measures/0": {"instrument": "PSFS", "score": 10.5}},
        "E_RANGE /outcome_measures/0/score",
    ),
    _case(
        G2,
        {
            "/outcome_measures/0": {
                "instrument": "PSFS",
                "score": 5.5,
                "items": [{"activity": "Lift", "score": 11}],
            }
        },  # fmt: skip
        "E_RANGE /outcome_measures/0/items/0/score",
    ),
    _case(
        G2,
        {
            "/outcome_measures/0": {
                "instrument": "PSFS",
                "score": 5.5,
                "items": [{"activity": "Lift", "score": 5.5}],
            }
        },
    ),  # fmt: skip
    _case(G1, {"/record_version": 2**31}, "E_RANGE /record_version"),
    _case(G1, {"/record_version": 2**31 - 1}),
]

CODES = [
    _case(G1, {"/schema_version": "3.0"}, "E_SCHEMA_VERSION /schema_version"),
    # record contract 2.0 (issue 10 #4, #13)
    _case(G1, {"/schema_version": "2.0"}, "E_REQUIRED /session/iastm_minutes"),
    _case(G1, {"/schema_version": "2.0", "/session/iastm_minutes": 20}),
    _case(G1, {"/schema_version": "2.0", "/session/iastm_minutes": 20, "/visit_kind": "evaluation"}),
    _case(G1, {"/visit_kind": "treatment"}, "E_SCHEMA_VERSION /visit_kind"),
    _case(G1, {"/session/iastm_minutes": 20}, "E_SCHEMA_VERSION /session/iastm_minutes"),
    _case(
        G1,
        {"/schema_version": "2.0", "/session/iastm_minutes": 39},
        "E_DURATION_MISMATCH /session/iastm_minutes",
    ),
    _case(
        G1,
        {"/schema_version": "2.0", "/session/iastm_minutes": 20, "/visit_kind": "follow-up"},
        "E_CODE_UNKNOWN /visit_kind",
    ),
    _case(
        G1, {"/schema_version": "2.0", "/session/iastm_minutes": 0}, "E_FORMAT /session/iastm_minutes"
    ),
    # condition-specific outcome measures (schema 2.0, docs/clinical.md#outcome-measures)
    _case(
        G1,
        {"/outcome_measures": [{"instrument": "PRTEE", "score": 42.5}]},
        "E_SCHEMA_VERSION /outcome_measures/0/instrument",
    ),
    *(
        _case(
            G1,
            {"/schema_version": "2.0", "/session/iastm_minutes": 20,
             "/outcome_measures": [{"instrument": name, "score": score}]},
            *([f"E_RANGE {OM0}"] if bad else []),
        )
        for name, score, bad in [
            ("PRTEE", 42.5, False), ("PRTEE", 101, True), ("FAAM-ADL", 76.2, False),
            ("FAAM-Sports", -1, True), ("VISA-P", 55, False), ("VISA-P", 55.5, True),
            ("KOOS-JR", 50.012, False), ("HOOS-JR", 100.5, True),
        ]
    ),  # fmt: skip
    _case(G1, {"/schema_version": 1.0}, "E_TYPE /schema_version"),
    _case(G1, {"/status": "done"}, "E_CODE_UNKNOWN /status"),
    _case(G1, {"/patient/gender": "M"}, "E_CODE_UNKNOWN /patient/gender"),
    _case(G2, {"/technique/code": "cupping"}, "E_CODE_UNKNOWN /technique/code"),
    _case(G1, {"/technique/code": "iastm"}, "E_CODE_UNKNOWN /technique/code"),
    _case(G1, {"/instruments/0/code": "wood"}, "E_CODE_UNKNOWN /instruments/0/code"),
    _case(G1, {"/treatment_sites/0/site": "shoulder"}, "E_CODE_UNKNOWN /treatment_sites/0/site"),
    _case(
        G1, {"/treatment_sites/0/laterality": "L"}, "E_CODE_UNKNOWN /treatment_sites/0/laterality"
    ),
    _case(
        G1,
        {"/treatment_sites/0/laterality": "Right"},
        "E_CODE_UNKNOWN /treatment_sites/0/laterality",
    ),
    _case(G1, {"/conditions/0/laterality": "both"}, "E_CODE_UNKNOWN /conditions/0/laterality"),
    _case(
        G1,
        {"/conditions/0/clinical_status": "ongoing"},
        "E_CODE_UNKNOWN /conditions/0/clinical_status",
    ),
    _case(
        G1,
        {"/conditions/0/verification_status": "maybe"},
        "E_CODE_UNKNOWN /conditions/0/verification_status",
    ),  # fmt: skip
    _case(G1, {"/pain/scale": "VAS"}, "E_CODE_UNKNOWN /pain/scale"),
    _case(G6, {"/rom/0/joint": "shoulder"}, "E_CODE_UNKNOWN /rom/0/joint"),
    _case(G6, {"/rom/0/motion": "circumduction"}, "E_CODE_UNKNOWN /rom/0/motion"),
    _case(G6, {"/rom/0/motion": "pronation"}, "E_CODE_UNKNOWN /rom/0/motion"),
    _case(G6, {"/rom/0/laterality": "bilateral"}, "E_CODE_UNKNOWN /rom/0/laterality"),
    _case(G6, {"/rom/0/mode": "assisted"}, "E_CODE_UNKNOWN /rom/0/mode"),
    _case(G6, {"/rom/0/method": "app"}, "E_CODE_UNKNOWN /rom/0/method"),
    _case(G6, {"/rom/0/timing": "during"}, "E_CODE_UNKNOWN /rom/0/timing"),
    _case(
        G6,
        {"/outcome_measures/0/instrument": "DASH"},
        "E_CODE_UNKNOWN /outcome_measures/0/instrument",
    ),
    _case(G3, {"/adverse_effects/0/type": "bleeding"}, "E_CODE_UNKNOWN /adverse_effects/0/type"),
    _case(
        G3, {"/adverse_effects/0/severity": "extreme"}, "E_CODE_UNKNOWN /adverse_effects/0/severity"
    ),
    _case(G1, {"/adjunct_therapies/0/type": "massage"}, "E_CODE_UNKNOWN /adjunct_therapies/0/type"),
    _case(G1, {"/clinic/address/state": "XX"}, "E_CODE_UNKNOWN /clinic/address/state"),
    _case(G1, {"/conditions/0/snomed": "13370002"}, "E_CODE_UNKNOWN /conditions/0/snomed"),
    _case(G3, {"/conditions/0/snomed": "13370002"}, "E_CODE_UNKNOWN /conditions/0/snomed"),
    # ICD-10-CM validity and billability (docs/decisions.md#d19, simple-icd-10-cm)
    _case(G1, {"/conditions/0/icd10cm": "M77.13"}, "E_ICD_INVALID /conditions/0/icd10cm"),
    _case(G1, {"/conditions/0/icd10cm": "U99.9"}, "E_FORMAT /conditions/0/icd10cm"),
    _case(G1, {"/conditions/0/icd10cm": "M77.1"}, "E_ICD_NOT_BILLABLE /conditions/0/icd10cm"),
    _case(G5, {"/conditions/0/icd10cm": "S76.312"}, "E_ICD_NOT_BILLABLE /conditions/0/icd10cm"),
    _case(G5, {"/conditions/0/icd10cm": "S76.31"}, "E_ICD_NOT_BILLABLE /conditions/0/icd10cm"),
    _case(G5, {"/conditions/0/icd10cm": "S76.312A"}),
    # NPI (US Core us-core-16/17)
    _case(G1, {"/clinic/npi": "1234567890"}, "E_NPI_INVALID /clinic/npi"),
    _case(G1, {"/therapist/npi": "198765432"}, "E_NPI_INVALID /therapist/npi"),
    _case(G1, {"/therapist/npi": "19876543AB"}, "E_NPI_INVALID /therapist/npi"),
    # SNOMED/ICD pairs (docs/decisions.md#d19)
    _case(G1, {"/conditions/0/snomed": "53286005"}, "E_CODE_MISMATCH /conditions/0/snomed"),
    _case(G6, {"/conditions/0/snomed": "202855006"}, "E_CODE_MISMATCH /conditions/0/snomed"),
    _case(G1, {"/conditions/0/snomed": DELETE}),
]

V2 = {"/schema_version": "2.0", "/session/iastm_minutes": 20}
SCR = "/screening"


def _screen(**changes: Any) -> dict[str, Any]:
    data = {"performed_at": "2025-03-04T08:55:00-06:00", "anticoagulant_therapy": False,
            "skin_intact": True, "consent_obtained": True}  # fmt: skip
    return {k: v for k, v in {**data, **changes}.items() if v is not None}


CROSS_FIELD = [
    # screening and consent (schema 2.0, issue 10 #5, docs/clinical.md#screening)
    _case(G1, {**V2, SCR: _screen()}),
    _case(G1, {**V2, SCR: _screen(findings=["varicosities"], anticoagulant_therapy=True)}),
    _case(G1, {**V2, SCR: _screen(findings=["hematoma"])}, f"E_CONTRAINDICATION {SCR}/findings/0"),
    _case(
        G1,
        {**V2, SCR: _screen(findings=["varicosities", "thrombophlebitis-dvt"])},
        f"E_CONTRAINDICATION {SCR}/findings/1",
    ),
    _case(G1, {**V2, SCR: _screen(findings=["hematoma"], override_reason="other arm")}),
    _case(
        G1, {**V2, SCR: _screen(consent_obtained=False)}, f"E_CONSENT_MISSING {SCR}/consent_obtained"
    ),
    _case(
        G1,
        {**V2, SCR: _screen(findings=["varicosities", "varicosities"])},
        f"E_DUPLICATE_KEY {SCR}/findings/1",
    ),
    _case(G1, {**V2, SCR: _screen(findings=["bruise"])}, f"E_CODE_UNKNOWN {SCR}/findings/0"),
    _case(G1, {**V2, SCR: _screen(skin_intact=None)}, f"E_REQUIRED {SCR}/skin_intact"),
    _case(G1, {**V2, SCR: _screen(consent_obtained="yes")}, f"E_TYPE {SCR}/consent_obtained"),
    _case(G1, {SCR: _screen()}, f"E_SCHEMA_VERSION {SCR}"),
    # IASTM parameters (schema 2.0, docs/clinical.md#iastm-parameters)
    _case(G1, {**V2, "/iastm_parameters": {"strokes": ["sweeping", "fanning"], "pressure": "light",
                                            "tolerance": "well-tolerated"}}),
    _case(G1, {**V2, "/iastm_parameters": {"strokes": ["fanning", "fanning"]}},
          "E_DUPLICATE_KEY /iastm_parameters/strokes/1"),
    _case(G1, {**V2, "/iastm_parameters": {"pressure": "deep"}},
          "E_CODE_UNKNOWN /iastm_parameters/pressure"),
    _case(G1, {"/iastm_parameters": {"tolerance": "not-tolerated"}},
          "E_SCHEMA_VERSION /iastm_parameters"),
    # condition <-> treatment site (schema 2.0, issue 10 #7, docs/clinical.md#condition-site)
    _case(G1, {**V2, "/conditions/0/site_index": 0}),
    _case(G1, {**V2, "/conditions/0/site_index": 1}, "E_REF /conditions/0/site_index"),
    _case(G1, {**V2, "/conditions/0/site_index": -1}, "E_REF /conditions/0/site_index"),
    _case(G1, {"/conditions/0/site_index": 0}, "E_SCHEMA_VERSION /conditions/0/site_index"),
    _case(
        G4,
        {**V2, "/conditions/0/site_index": 0},
        "E_LATERALITY_CONFLICT /conditions/0/site_index",
    ),
    _case(
        G8,
        {"/schema_version": "2.0",
         SCR: _screen(findings=["active-infection"], consent_obtained=False)},  # fmt: skip
    ),
    # E_PERIOD_ORDER / E_DURATION_MISMATCH: offset-aware
    _case(G1, {"/session/end": "2025-03-04T09:00:00-06:00"}, "E_PERIOD_ORDER /session/end"),
    _case(G1, {"/session/end": "2025-03-04T09:40:00-05:00"}, "E_PERIOD_ORDER /session/end"),
    _case(G1, {"/session/end": "2025-03-04T15:40:00Z"}),
    _case(G1, {"/session/end": "2025-03-04T21:10:00+05:30"}),
    _case(
        G1,
        {"/session/end": "2025-03-04T15:30:00+00:00"},
        "E_DURATION_MISMATCH /session/duration_min",
    ),
    _case(G1, {"/session/duration_min": 42}, "E_DURATION_MISMATCH /session/duration_min"),
    _case(G1, {"/session/duration_min": 41}),
    _case(G1, {"/session/duration_min": 39}),
    # start broken: the cross-field rules that read it stay silent (docs/decisions.md#d21)
    _case(G1, {"/session/start": "2025-03-04T10:00:00"}, "E_FORMAT /session/start"),
    # E_LATERALITY_CONFLICT (docs/decisions.md#d18)
    _case(
        G1, {"/conditions/0/laterality": "left"}, "E_LATERALITY_CONFLICT /conditions/0/laterality"
    ),
    _case(
        G1,
        {"/conditions/0/laterality": "not-applicable"},
        "E_LATERALITY_CONFLICT /conditions/0/laterality",
    ),  # fmt: skip
    _case(
        G1,
        {"/conditions/0/laterality": "bilateral"},
        "E_LATERALITY_CONFLICT /conditions/0/laterality",
    ),
    _case(
        G1, {"/conditions/0/icd10cm": "M77.10"}, "E_LATERALITY_CONFLICT /conditions/0/laterality"
    ),
    _case(G1, {"/conditions/0/icd10cm": "M77.10", "/conditions/0/laterality": "not-applicable"}),
    _case(
        G1,
        {"/conditions/0/icd10cm": "M77.12", "/conditions/0/laterality": "left"},
        "E_LATERALITY_CONFLICT /conditions/0/laterality",
    ),  # fmt: skip
    _case(
        G1,
        {
            "/conditions/0/icd10cm": "M77.12",
            "/conditions/0/laterality": "left",
            "/treatment_sites/0/laterality": "bilateral",
        },
    ),  # fmt: skip
    _case(
        G3, {"/conditions/0/laterality": "left"}, "E_LATERALITY_CONFLICT /conditions/0/laterality"
    ),
    _case(
        G3,
        {"/conditions/0/laterality": "bilateral"},
        "E_LATERALITY_CONFLICT /conditions/0/laterality",
    ),
    _case(
        G3, {"/conditions/0/laterality": "bilateral", "/treatment_sites/0/laterality": "bilateral"}
    ),
    _case(
        G3,
        {
            "/conditions/0/laterality": "bilateral",
            "/treatment_sites/1": {"site": "plantar-fascia", "laterality": "left"},
        },
    ),  # fmt: skip
    _case(G3, {"/conditions/0/laterality": "not-applicable"}),
    # plausibility (issue 10 #14): PSFS = mean of its items; recorded before start; long sessions
    _case(G1, {"/outcome_measures": [_psfs(9, [2, 3])]}, f"E_SCORE_MISMATCH {OM0}"),
    _case(G1, {"/outcome_measures": [_psfs(2.5, [2, 3])]}),
    _case(G1, {"/outcome_measures": [_psfs(2.33, [2, 2, 3])]}),
    _case(G1, {"/outcome_measures": [_psfs(2.4, [2, 2, 3])]}, f"E_SCORE_MISMATCH {OM0}"),
    _case(G1, {"/outcome_measures": [{"instrument": "PSFS", "score": 9}]}),
    # one finding per (type, site): the effect Observation's key (issue 10 #6)
    _case(
        G3,
        {"/adverse_effects/1/type": "bruising"},
        "E_DUPLICATE_KEY /adverse_effects/1",
    ),
    _case(G3, {"/adverse_effects/1/type": "bruising", "/adverse_effects/1/site_index": DELETE}),
    # laterality from the ICD-10-CM table: every sided code, not four patterns (issue 10 #1)
    *(
        _case(
            G3,
            {"/conditions/0/icd10cm": code, "/conditions/0/snomed": DELETE,
             "/conditions/0/laterality": side, "/treatment_sites/0/laterality": site},
            *(["E_LATERALITY_CONFLICT /conditions/0/laterality"] if bad else []),
        )
        for code, side, site, bad in [
            ("M76.61", "left", "left", True), ("M76.61", "not-applicable", "right", True),
            ("M76.61", "right", "right", False), ("M79.672", "right", "right", True),
            ("M79.672", "left", "left", False), ("M25.551", "left", "left", True),
            ("M25.552", "right", "right", True), ("M25.661", "left", "left", True),
            ("M76.31", "left", "left", True), ("M70.61", "left", "left", True),
            ("S76.111A", "left", "left", True), ("S86.011A", "left", "left", True),
            ("S86.011A", "bilateral", "bilateral", True), ("M17.0", "right", "right", True),
            ("M17.0", "bilateral", "bilateral", False), ("M79.673", "right", "right", True),
            ("M79.673", "not-applicable", "right", False), ("M72.2", "left", "left", False),
        ]
    ),  # fmt: skip
    _case(
        G5, {"/conditions/0/icd10cm": "S76.311D"}, "E_LATERALITY_CONFLICT /conditions/0/laterality"
    ),
    _case(
        G5, {"/conditions/0/icd10cm": "S76.319D"}, "E_LATERALITY_CONFLICT /conditions/0/laterality"
    ),
    _case(
        G6, {"/conditions/2/icd10cm": "Z96.653"}, "E_LATERALITY_CONFLICT /conditions/2/laterality"
    ),
    _case(
        G6,
        {
            "/conditions/2/icd10cm": "Z96.653",
            "/conditions/2/laterality": "bilateral",
            "/treatment_sites/0/laterality": "bilateral",
        },
    ),  # fmt: skip
    _case(
        G4,
        {"/treatment_sites/0/laterality": "right"},
        "E_LATERALITY_CONFLICT /conditions/1/laterality",
    ),
    _case(
        G3,
        {"/treatment_sites/0/laterality": "both"},
        "E_CODE_UNKNOWN /treatment_sites/0/laterality",
    ),
    _case(G1, {"/conditions/0/icd10cm": "M77.99"}, "E_ICD_INVALID /conditions/0/icd10cm"),
    # E_MULTIPLE_PRIMARY
    _case(G4, {"/conditions/1/is_primary": True}, "E_MULTIPLE_PRIMARY /conditions/1/is_primary"),
    _case(G4, {"/conditions/0/is_primary": False}),
    # E_DUPLICATE_KEY (docs/decisions.md#d17)
    _case(
        G4,
        {"/conditions/1/condition_id": "DX-100689-01"},
        "E_DUPLICATE_KEY /conditions/1/condition_id",
    ),
    _case(
        G4,
        {"/conditions/1/icd10cm": "M76.51", "/conditions/1/laterality": "right"},
        "E_DUPLICATE_KEY /conditions/1/icd10cm",
    ),  # fmt: skip
    _case(
        G1,
        {"/treatment_sites/1": {"site": "elbow-lateral", "laterality": "right"}},
        "E_DUPLICATE_KEY /treatment_sites/1",
    ),  # fmt: skip
    _case(G1, {"/treatment_sites/1": {"site": "elbow-lateral", "laterality": "left"}}),
    _case(G6, {"/rom/1/timing": "pre"}, "E_DUPLICATE_KEY /rom/1"),
    _case(G6, {"/rom/1/mode": "passive"}),
    _case(
        G6,
        {"/outcome_measures/1": {"instrument": "LEFS", "score": 42}},
        "E_DUPLICATE_KEY /outcome_measures/1/instrument",
    ),  # fmt: skip
    _case(
        G1, {"/adjunct_therapies/1/type": "stretching"}, "E_DUPLICATE_KEY /adjunct_therapies/1/type"
    ),
    # E_REF
    _case(G3, {"/adverse_effects/0/site_index": 1}, "E_REF /adverse_effects/0/site_index"),
    _case(G3, {"/adverse_effects/1/site_index": -1}, "E_REF /adverse_effects/1/site_index"),
    _case(G3, {"/adverse_effects/0/site_index": DELETE}),
    # E_STATUS_CONFLICT (docs/decisions.md#d21) and R4 con-5
    _case(G8, {"/pain": {"scale": "NRS-11", "pre": 5}}, "E_STATUS_CONFLICT /pain"),
    _case(G8, {"/session/end": "2025-06-03T13:30:00-05:00"}, "E_STATUS_CONFLICT /session/end"),
    _case(G8, {"/session/duration_min": 30}, "E_STATUS_CONFLICT /session/duration_min"),
    _case(G8, {"/instruments": [{"code": "other"}]}, "E_STATUS_CONFLICT /instruments"),
    _case(
        G8,
        {"/adjunct_therapies": [{"type": "stretching", "minutes": 5}]},
        "E_STATUS_CONFLICT /adjunct_therapies",
    ),  # fmt: skip
    _case(G8, {"/rom": example(G6)["rom"]}, "E_STATUS_CONFLICT /rom"),
    _case(
        G8,
        {"/outcome_measures": [{"instrument": "LEFS", "score": 30}]},
        "E_STATUS_CONFLICT /outcome_measures",
    ),  # fmt: skip
    _case(
        G8,
        {"/adverse_effects": [{"type": "soreness", "severity": "mild"}]},
        "E_STATUS_CONFLICT /adverse_effects",
    ),  # fmt: skip
    _case(G8, {"/rom": [], "/instruments": []}),
    _case(G1, {"/status_reason": "n/a"}, "E_STATUS_CONFLICT /status_reason"),
    _case(
        G1,
        {"/conditions/0/verification_status": "entered-in-error"},
        "E_STATUS_CONFLICT /conditions/0/clinical_status",
    ),  # fmt: skip
    # a conditional requirement never doubles a field's own error (docs/decisions.md#d21)
    _case(G8, {"/status_reason": 5}, "E_TYPE /status_reason"),
    _case(
        G1,
        {"/conditions/0/verification_status": "maybe", "/conditions/0/clinical_status": DELETE},
        "E_CODE_UNKNOWN /conditions/0/verification_status",
    ),  # fmt: skip
    _case(
        G1,
        {"/status": "paused", "/status_reason": "x", "/session/end": DELETE},
        "E_CODE_UNKNOWN /status",
    ),  # fmt: skip
    _case(
        G7,
        {"/status": "cancelled", "/session/end": DELETE, "/session/duration_min": DELETE},
        "E_STATUS_CONFLICT /pain",
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    ("base", "edits", "want"), TYPES + REQUIRED + FORMATS + RANGES + CODES + CROSS_FIELD
)
def test_rule(base: str, edits: dict[str, Any], want: list[str]) -> None:
    _, issues = check_record(with_changes(example(base), edits))
    got = sorted((i.details, i.expression) for i in issues if i.is_error)
    expected = sorted((w.split()[0], pointer_to_path(w.split()[1])) for w in want)
    assert got == expected
    for issue in issues:
        assert issue.code == CATALOGUE[issue.details or ""][0]
        assert issue.diagnostics


def test_every_catalogue_code_is_exercised() -> None:
    rows = TYPES + REQUIRED + FORMATS + RANGES + CODES + CROSS_FIELD
    used = {w.split()[0] for row in rows for w in row.values[2]}
    batch_only = {
        "E_DUPLICATE_SESSION",
        "E_STALE_VERSION",
        "W_IDEMPOTENT_REPEAT",
        "W_PLAN_EXCEEDED",
        "W_RECORDED_BEFORE_START",  # test_plausibility_warnings
        "W_LONG_SESSION",
    }
    assert set(CATALOGUE) - used - batch_only == {"E_UNKNOWN_FIELD"}  # in test_records.py


def test_load_record_raises_with_every_error() -> None:
    data = with_changes(
        example(G6), {"/rom/0/degrees": 200, "/rom/1/timing": "pre", "/patient/gender": "m"}
    )
    with pytest.raises(InvalidRecordError) as info:
        load_record(data)
    assert sorted(info.value.codes) == [
        ("E_CODE_UNKNOWN", "patient.gender"),
        ("E_DUPLICATE_KEY", "rom[1]"),
        ("E_RANGE", "rom[0].degrees"),
    ]


@pytest.mark.parametrize(
    ("code", "side"),
    [("M77.11", "right"), ("M77.02", "left"), ("M76.50", "unspecified"), ("S76.312D", "left"),
     ("S76.319A", "unspecified"), ("Z96.653", "bilateral"), ("Z96.649", "unspecified"),
     ("M25.561", "right"), ("M72.2", None), ("T84.84XD", None), ("G89.28", None)],
)  # fmt: skip
def test_icd_side(code: str, side: str | None) -> None:
    assert icd_side(code) == side


def test_snomed_pairs_come_from_the_terminology_file() -> None:
    assert snomed_for_icd("M77.11") == "202855006"
    assert snomed_for_icd("M77.02") == "53286005"
    assert snomed_for_icd("M72.2") == "202882003"
    assert snomed_for_icd("M76.52") == "37785001"
    assert snomed_for_icd("S76.312D") == "481000119104"
    assert snomed_for_icd("S76.302D") is None
    assert snomed_for_icd("T84.84XD") is None


@pytest.mark.parametrize(
    ("edits", "warnings"),
    [
        ({"/recorded_at": "2025-03-04T08:59:59-06:00"},
         [("W_RECORDED_BEFORE_START", "recorded_at")]),
        ({"/recorded_at": "2025-03-04T09:00:00-06:00"}, []),
        ({"/session/end": "2025-03-04T19:00:00-06:00", "/session/duration_min": 600},
         [("W_LONG_SESSION", "session.end")]),
        ({"/session/end": "2025-03-04T12:00:00-06:00", "/session/duration_min": 180}, []),
    ],
)  # fmt: skip
def test_plausibility_warnings(edits: dict[str, Any], warnings: list[tuple[str, str]]) -> None:
    """Issue 10 #14: accepted (no error), with a warning in the OperationOutcome."""
    _, issues = check_record(with_changes(example(G1), edits))
    assert not [i for i in issues if i.is_error]
    assert sorted((i.details, i.expression) for i in issues if i.severity == "warning") == warnings
