"""The closed code lists of the internal record, read from the code tables
(``fhir_iastm/data/codes.json``) — one source for the record checks, the record's JSON Schema
and the mapper.

A list whose values each map to a coding is the keys of its table (in the table's order); the
few lists that are not tables here are FHIR value sets or record-only choices, named below.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def raw_codes() -> dict[str, Any]:
    """The parsed terminology file ``fhir_iastm/data/codes.json`` (read once per process)."""
    text = resources.files("fhir_iastm").joinpath("data/codes.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def table_values(name: str) -> tuple[str, ...]:
    """The record values of code table ``name`` (its keys, without ``_about`` & co.)."""
    return tuple(value for value in raw_codes()[name] if not value.startswith("_"))


TECHNIQUES = table_values("technique")
INSTRUMENTS = table_values("instrument")
SITES = table_values("body_site_local")
SITE_LATERALITIES = table_values("laterality")
CLINICAL_STATUSES = table_values("condition_clinical")
VERIFICATION_STATUSES = table_values("condition_verification")
ROM_JOINTS = table_values("rom_joint")
ROM_METHODS = table_values("rom_method")
TIMINGS = table_values("measurement_timing")
OUTCOME_INSTRUMENTS = table_values("prom_code")
#: The instruments a schema 1.0 record may name (the others are schema 2.0,
#: docs/clinical.md#outcome-measures).
OUTCOME_INSTRUMENTS_V1 = ("LEFS", "QuickDASH", "PSFS")
ADVERSE_TYPES = table_values("adverse_effect")
VISIT_KINDS = table_values("visit_kind")
#: iastm_parameters (schema 2.0, docs/clinical.md#iastm-parameters)
STROKES = table_values("iastm_stroke")
PRESSURES = table_values("iastm_pressure")
TOLERANCES = table_values("iastm_tolerance")
SEVERITIES = table_values("adverse_severity")


def _screening_kind(*kinds: str) -> tuple[str, ...]:
    table = raw_codes()["screening"]
    return tuple(v for v in table_values("screening") if table[v]["kind"] in kinds)


#: screening.findings: the contraindications and precautions screened for
#: (docs/clinical.md#screening); an absolute one stops a completed session without an override.
SCREENING_FINDINGS = _screening_kind("absolute", "precaution")
ABSOLUTE_CONTRAINDICATIONS = _screening_kind("absolute")
ADJUNCT_TYPES = table_values("adjunct_local")


def _motions_by_joint() -> dict[str, tuple[str, ...]]:
    """``rom_code`` keys are ``{joint}-{motion}``: the motions coded at each joint."""
    pairs = [key.split("-", 1) for key in table_values("rom_code")]
    return {joint: tuple(m for j, m in pairs if j == joint) for joint in ROM_JOINTS}


#: The joint/motion pairs that have an ``iastm-observation`` code.
ROM_MOTIONS_BY_JOINT = _motions_by_joint()
ROM_MOTIONS = tuple(dict.fromkeys(m for ms in ROM_MOTIONS_BY_JOINT.values() for m in ms))

#: ICD-10-CM prefix -> the verified SNOMED CT concept it pairs with; the codes allowed in
#: ``conditions[].snomed`` are its values.
SNOMED_BY_ICD_PREFIX: dict[str, str] = {
    prefix: entry["code"]
    for prefix, entry in raw_codes()["condition_snomed_by_icd_prefix"].items()
    if not prefix.startswith("_")
}
VERIFIED_CONDITION_SNOMED = tuple(dict.fromkeys(SNOMED_BY_ICD_PREFIX.values()))

# Not tables of codes.json: FHIR value sets and record-only choices.
#: 1.0: the original contract; 2.0 adds visit_kind, session.iastm_minutes and the
#: condition-specific outcome measures (docs/clinical.md#record-contract-version-2).
SCHEMA_VERSIONS = ("1.0", "2.0")
#: The record's own status (mapped to three FHIR statuses, ``mapping.codes.STATUS``).
STATUSES = ("completed", "entered-in-error", "cancelled")
#: FHIR administrative-gender (required binding of Patient.gender).
GENDERS = ("male", "female", "other", "unknown")
#: ``laterality`` plus ``not-applicable`` (a condition without a side emits no extension).
CONDITION_LATERALITIES = (*SITE_LATERALITIES, "not-applicable")
#: The one pain scale (its LOINC code is the ``fixed.pain_loinc`` entry).
PAIN_SCALES = ("NRS-11",)
#: A range of motion is measured on one side.
ROM_LATERALITIES = tuple(v for v in SITE_LATERALITIES if v != "bilateral")
ROM_MODES = ("active", "passive")

__all__ = [
    "ABSOLUTE_CONTRAINDICATIONS",
    "ADJUNCT_TYPES",
    "ADVERSE_TYPES",
    "CLINICAL_STATUSES",
    "CONDITION_LATERALITIES",
    "GENDERS",
    "INSTRUMENTS",
    "OUTCOME_INSTRUMENTS",
    "OUTCOME_INSTRUMENTS_V1",
    "PAIN_SCALES",
    "PRESSURES",
    "ROM_JOINTS",
    "ROM_LATERALITIES",
    "ROM_METHODS",
    "ROM_MODES",
    "ROM_MOTIONS",
    "ROM_MOTIONS_BY_JOINT",
    "SCHEMA_VERSIONS",
    "SCREENING_FINDINGS",
    "SEVERITIES",
    "SITES",
    "SITE_LATERALITIES",
    "SNOMED_BY_ICD_PREFIX",
    "STROKES",
    "STATUSES",
    "TECHNIQUES",
    "TIMINGS",
    "TOLERANCES",
    "VISIT_KINDS",
    "VERIFICATION_STATUSES",
    "VERIFIED_CONDITION_SNOMED",
    "raw_codes",
    "table_values",
]
