"""The mapping as data: one row per FHIR element the mapper emits (docs/mapping.md is generated).

Each ``Element`` names the kind of resource (and so its profile), the element path, the record
field(s) it comes from, the code table of ``fhir_iastm/data/codes.json`` it uses, and how the
reverse mapping reads it back. ``mapping.trace`` reads this table to name the record field behind
a validation issue; ``scripts/gen_docs.py`` renders it; a test proves that every element of the
golden Bundles and of the mapped examples has a row, and that every row is emitted.

Path notation: FHIR element names from the resource root, without indices. A repeating
``extension`` is named by the last segment of its URL (``extension:mcode-laterality-qualifier``);
a resource-level ``identifier`` and any ``coding`` by their system (:func:`slice_name`).
Record fields are written as in the record (docs/decisions.md#identifiers): ``[]`` marks an array
element; the kind's keyed array (``conditions[]``) is selected by the role's key, a positional one
(``treatment_sites[]``) by the index of the FHIR element named in ``Element.index``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
_ALIASES = {SNOMED: "sct", LOINC: "loinc", CPT: "cpt"}
#: Repeating elements whose items are named by a URL or system, not by position.
SLICED = ("extension", "coding", "identifier")


def slice_name(element: str, item: object) -> str | None:
    """``url``/``system`` alias of one item of a sliced element (None: not a sliced item)."""
    if element not in SLICED or not isinstance(item, dict):
        return None
    key = str(item.get("url" if element == "extension" else "system") or "")
    return _ALIASES.get(key) or key.rstrip("/").rsplit("/", 1)[-1] or None


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of resource the mapper emits (several kinds may share a resource type)."""

    name: str
    resource_type: str
    profile: str
    #: regex on the role (the ``iastm-session-resource`` value after ``{session_id}/``); None for
    #: the shared resources, which are recognised by their type
    role: str | None
    #: the record field of the whole resource; ``[]`` is selected by the role's groups
    record: str
    #: how a trace writes ``record``'s keyed ``[]`` (FHIRPath-style selector)
    selector: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class Element:
    """One emitted FHIR element and where it comes from."""

    kind: str
    path: str
    record: tuple[str, ...] = ()
    table: str | None = None
    reverse: str = ""
    #: FHIR elements whose indices fill the positional ``[]`` of ``record`` (in order)
    index: tuple[str, ...] = ()
    #: resource-level invariants whose failure this element's record field explains
    invariants: tuple[str, ...] = ()


_ROM = r"obs/rom/(?P<joint>[a-z]+)-(?P<motion>.+)-(?P<lat>left|right)-(?P<mode>[a-z]+)-"
_ROM += r"(?P<timing>pre|post)$"
_ROM_KEY = "joint='{joint}' and motion='{motion}' and laterality='{lat}' and mode='{mode}' and "
# fmt: off
KINDS: tuple[Kind, ...] = (
    Kind("organization", "Organization", "iastm-organization", None, "clinic",
         title="Organization (the clinic)"),
    Kind("practitioner", "Practitioner", "iastm-practitioner", None, "therapist",
         title="Practitioner (the therapist)"),
    Kind("patient", "Patient", "iastm-patient", None, "patient", title="Patient"),
    Kind("encounter", "Encounter", "iastm-encounter", r"encounter$", "session",
         title="Encounter (the visit)"),
    Kind("condition", "Condition", "iastm-condition", r"condition/(?P<cid>.+)$", "conditions[]",
         "conditions.where(condition_id='{cid}')", "Condition (one per conditions[] entry)"),
    Kind("procedure", "Procedure", "iastm-procedure", r"procedure$", "session_id",
         title="Procedure (the IASTM session)"),
    Kind("adjunct", "Procedure", "iastm-adjunct-procedure", r"adjunct/(?P<type>.+)$",
         "adjunct_therapies[]", "adjunct_therapies.where(type='{type}')",
         "Procedure (an adjunct therapy)"),
    Kind("pain", "Observation", "iastm-pain-observation", r"obs/pain-(?P<timing>pre|post)$",
         "pain.{timing}", title="Observation (pain before or after)"),
    Kind("rom", "Observation", "iastm-rom-observation", _ROM, "rom[]",
         "rom.where(" + _ROM_KEY + "timing='{timing}')", "Observation (range of motion)"),
    Kind("prom", "Observation", "iastm-prom-observation", r"obs/prom/(?P<inst>.+)$",
         "outcome_measures[]", "outcome_measures.where(instrument='{inst}')",
         "Observation (outcome measure)"),
    Kind("effect", "Observation", "iastm-effect-observation",
         r"obs/effect/(?P<type>[a-z]+)(?:/(?P<site>.+))?$", "adverse_effects[]",
         "adverse_effects.where(type='{type}')",
         "Observation (an expected mild effect, docs/clinical.md#expected-effects)"),
    Kind("screening", "Observation", "iastm-screening-observation", r"obs/screening$",
         "screening", title="Observation (contraindication screening, docs/clinical.md#screening)"),
)
# fmt: on

_REF = "resolved by reference; read with the resource it points to"
_VERSION = "record_version (required)"
_HASH = "not read back: the push compares it to skip unchanged versions (docs/decisions.md#d7)"
_PROFILE = "not read back (our profile; US Core's too with IASTM_CLAIM_US_CORE)"
_KEY = "the role after {session_id}/ tells the resource's place in the record"
_LAT = "laterality: only from this extension; missing → error, never guessed"
_LOC = "not read back (implied by the site code)"
_SITE_LOCAL = "site: from this coding only (body_site_local reversed)"
_TIMING = "timing: only from this extension; missing → error, never guessed"
E = Element

# fmt: off
#: The table: kind, path, record field(s), code table, reverse, positional index, invariants.
ELEMENTS: tuple[Element, ...] = (
    # organization
    E("organization", "meta.profile", reverse=_PROFILE),
    E("organization", "identifier:clinic", ("clinic.clinic_id",),
      reverse="clinic.clinic_id; also the ifNoneExist key"),
    E("organization", "identifier:us-npi", ("clinic.npi",), reverse="clinic.npi"),
    E("organization", "active", reverse="not read back (always true)"),
    E("organization", "name", ("clinic.name",), reverse="clinic.name"),
    E("organization", "address", ("clinic.address",), reverse="clinic.address (country dropped)"),
    E("organization", "telecom", ("clinic.phone",), reverse="clinic.phone"),
    # practitioner
    E("practitioner", "meta.profile", reverse=_PROFILE),
    E("practitioner", "identifier:us-npi", ("therapist.npi",),
      reverse="therapist.npi; also the ifNoneExist key"),
    E("practitioner", "name",
      ("therapist.family_name", "therapist.given_names", "therapist.credentials"),
      reverse="family, given, suffix"),
    E("practitioner", "qualification", ("therapist.license_number", "therapist.license_state"),
      reverse="state from the identifier system {CANON}/sid/state-license/{state}"),
    # patient
    E("patient", "meta.profile", reverse=_PROFILE),
    E("patient", "identifier:mrn", ("patient.mrn",), "fixed.identifier_type_mr",
      "patient.mrn (system {CANON}/sid/clinic/{clinic_id}/mrn); the ifNoneExist key"),
    E("patient", "name", ("patient.family_name", "patient.given_names"), reverse="family, given"),
    E("patient", "gender", ("patient.gender",), reverse="patient.gender"),
    E("patient", "birthDate", ("patient.birth_date",), reverse="patient.birth_date"),
    E("patient", "telecom", ("patient.phone", "patient.email"),
      reverse="phone / email by telecom.system"),
    E("patient", "address", ("patient.address",), reverse="patient.address (country dropped)"),
    E("patient", "managingOrganization", ("clinic",), reverse=_REF),
    # encounter
    E("encounter", "meta.profile", reverse=_PROFILE),
    E("encounter", "contained", ("conditions",),
      reverse="the conditions when no Condition resource is sent (a cancelled session with "
      "emit_conditions_for_cancelled off, docs/decisions.md#cancelled-conditions)"),
    E("encounter", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("encounter", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("encounter", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("encounter", "status", ("status",), reverse="status via docs/decisions.md#statuses"),
    E("encounter", "class", table="fixed.encounter_class", reverse="not read back (constant)"),
    E("encounter", "type", ("visit_kind",), reverse="see the codings"),
    E("encounter", "type.coding:sct", table="fixed.encounter_type",
      reverse="not read back (a 1.0 visit, or a treatment visit)"),
    E("encounter", "type.coding:iastm-visit-kind", ("visit_kind",), "visit_kind",
      "visit_kind (schema 2.0)"),
    E("encounter", "type.text", reverse="not read back (words)"),
    E("encounter", "subject", ("patient",), reverse=_REF),
    E("encounter", "participant", ("therapist",), reverse=_REF),
    E("encounter", "participant.type", table="fixed.encounter_participant_primary",
      reverse="not read back (constant PPRF)"),
    E("encounter", "period", ("session",), reverse="session.start and end (the visit)"),
    E("encounter", "period.start", ("session.start",), reverse="session.start"),
    E("encounter", "period.end", ("session.end",), reverse="session.end"),
    E("encounter", "length", ("session.duration_min",), "ucum",
      "session.duration_min (UCUM min)"),
    E("encounter", "diagnosis", ("conditions[].is_primary",),
      reverse="is_primary: the Condition ranked 1", index=("diagnosis",)),
    E("encounter", "serviceProvider", ("clinic",), reverse=_REF),
    # condition
    E("condition", "id", reverse="only when contained in the Encounter: condition-1..n in "
      "record order, the target of Encounter.diagnosis (docs/decisions.md#cancelled-conditions)"),
    E("condition", "meta.profile", reverse=_PROFILE),
    E("condition", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("condition", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("condition", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("condition", "subject", ("patient",), reverse=_REF),
    E("condition", "encounter", ("session",), reverse=_REF),
    E("condition", "identifier:iastm-condition", ("conditions[].condition_id",),
      reverse="conditions[].condition_id"),
    E("condition", "clinicalStatus", ("conditions[].clinical_status",), "condition_clinical",
      "clinical_status; absent when entered in error", invariants=("con-5", "con-3")),
    E("condition", "verificationStatus", ("conditions[].verification_status",),
      "condition_verification", "verification_status"),
    E("condition", "category", table="fixed.condition_category",
      reverse="not read back (constant)"),
    E("condition", "code", ("conditions[].icd10cm",), reverse="see the codings",
      invariants=("iastm-cond-1", "iastm-cond-3")),
    E("condition", "code.coding:icd-10-cm", ("conditions[].icd10cm",),
      reverse="icd10cm, as written"),
    E("condition", "code.coding:sct", ("conditions[].snomed",), "condition_snomed_by_icd_prefix",
      "snomed"),
    E("condition", "code.text", ("conditions[].text",), reverse="text"),
    E("condition", "bodySite", ("conditions[].laterality",), reverse="not-applicable when absent",
      invariants=("iastm-cond-2r", "iastm-cond-2l", "iastm-cond-2b", "iastm-cond-2u",
                  "iastm-cond-4")),
    E("condition", "bodySite.extension:mcode-laterality-qualifier", ("conditions[].laterality",),
      "laterality", _LAT),
    E("condition", "bodySite.text", ("conditions[].laterality",), reverse="not read back (words)"),
    E("condition", "bodySite.coding:iastm-body-site", ("conditions[].site_index",),
      "body_site_local", "site_index: the treated site with this site and side (schema 2.0)"),
    E("condition", "bodySite.coding:sct", ("conditions[].site_index",), "body_site_snomed",
      "not read back (many-to-one)"),
    E("condition", "bodySite.extension:mcode-body-location-qualifier",
      ("conditions[].site_index",), "body_location_qualifier", _LOC),
    E("condition", "onsetDateTime", ("conditions[].onset_date",), reverse="onset_date, as written"),
    E("condition", "recordedDate", ("recorded_at",), reverse="recorded_at"),
    # procedure
    E("procedure", "meta.profile", reverse=_PROFILE),
    E("procedure", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("procedure", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("procedure", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("procedure", "subject", ("patient",), reverse=_REF),
    E("procedure", "encounter", ("session",), reverse=_REF),
    E("procedure", "identifier:iastm-session", ("session_id",),
      reverse="session_id; the Procedure that carries it is the session",
      invariants=("iastm-proc-5",)),
    E("procedure", "extension:iastm-technique", ("technique.code", "technique.text"), "technique",
      "technique: only from this extension; missing → error", invariants=("iastm-proc-2",)),
    E("procedure", "extension:iastm-session-number", ("session.session_number",),
      reverse="session.session_number", invariants=("iastm-proc-6",)),
    E("procedure", "extension:iastm-planned-sessions", ("session.planned_sessions",),
      reverse="session.planned_sessions"),
    E("procedure", "extension:source-recorded-at", ("recorded_at",),
      reverse="recorded_at when no Condition carries it (docs/clinical.md#cancelled-recorded-at)"),
    E("procedure", "extension:iastm-stroke", ("iastm_parameters.strokes",), "iastm_stroke",
      "iastm_parameters.strokes, in order (schema 2.0)"),
    E("procedure", "extension:iastm-pressure", ("iastm_parameters.pressure",), "iastm_pressure",
      "iastm_parameters.pressure (schema 2.0)"),
    E("procedure", "extension:iastm-tolerance", ("iastm_parameters.tolerance",),
      "iastm_tolerance", "iastm_parameters.tolerance (schema 2.0)"),
    E("procedure", "extension:iastm-duration", ("session.iastm_minutes",), "ucum",
      "session.iastm_minutes (schema 2.0; UCUM min)"),
    E("procedure", "extension:source-schema-version", ("schema_version",),
      reverse="schema_version; absent → 1.0"),
    E("procedure", "basedOn", ("session.plan_of_care_id",),
      reverse="plan_of_care_id from the {CANON}/sid/plan-of-care identifier"),
    E("procedure", "status", ("status",),
      reverse="status via docs/decisions.md#statuses (not-done → cancelled)"),
    E("procedure", "statusReason", ("status_reason",), reverse="status_reason",
      invariants=("iastm-proc-3",)),
    E("procedure", "code", ("technique",), reverse="not read back (constant codings)"),
    E("procedure", "code.coding:sct", table="fixed.procedure_snomed", reverse="not read back"),
    E("procedure", "code.coding:iastm-technique", table="fixed.procedure_local",
      reverse="not read back"),
    E("procedure", "code.coding:cpt", ("billing.cpt_lines",),
      reverse="billing.cpt_lines, in order (only with include_cpt; docs/codes.md#cpt)"),
    E("procedure", "code.coding:cpt.extension:iastm-cpt-units", ("billing.cpt_lines",),
      reverse="the line's units (required)"),
    E("procedure", "code.text", ("technique.code",), reverse="not read back (words)"),
    E("procedure", "performedPeriod", ("session",), reverse="session.start and end"),
    E("procedure", "performedPeriod.start", ("session.start",), reverse="session.start"),
    E("procedure", "performedPeriod.end", ("session.end",), reverse="session.end",
      invariants=("iastm-proc-1", "iastm-proc-9", "us-core-7")),
    E("procedure", "performedDateTime", ("session.start",),
      reverse="not read back: session.start and end from the Encounter (receiver option "
              "performed_as_datetime)", invariants=("iastm-proc-9", "us-core-7")),
    E("procedure", "performer", ("therapist", "clinic"), reverse=_REF),
    E("procedure", "reasonReference", ("conditions",), reverse="the conditions, in this order",
      invariants=("iastm-proc-7",)),
    E("procedure", "bodySite", ("treatment_sites[]",), reverse="treatment_sites, in order",
      index=("bodySite",), invariants=("iastm-proc-4", "iastm-proc-10")),
    E("procedure", "bodySite.coding:iastm-body-site", ("treatment_sites[].site",),
      "body_site_local", _SITE_LOCAL, ("bodySite",)),
    E("procedure", "bodySite.coding:sct", ("treatment_sites[].site",), "body_site_snomed",
      "not read back (many-to-one)", ("bodySite",)),
    E("procedure", "bodySite.extension:mcode-laterality-qualifier",
      ("treatment_sites[].laterality",), "laterality", _LAT, ("bodySite",)),
    E("procedure", "bodySite.extension:mcode-body-location-qualifier", ("treatment_sites[].site",),
      "body_location_qualifier", _LOC, ("bodySite",)),
    E("procedure", "bodySite.text", ("treatment_sites[].site", "treatment_sites[].laterality"),
      reverse="not read back (words)", index=("bodySite", "bodySite")),
    E("procedure", "usedCode", ("instruments[].code",), "instrument", "instruments, in order",
      ("usedCode",)),
    E("procedure", "complication", ("adverse_effects[]",), reverse="adverse_effects, in order",
      index=("complication",), invariants=("iastm-proc-8",)),
    E("procedure", "complication.coding:sct", ("adverse_effects[].type",), "adverse_effect", "type",
      ("complication",)),
    E("procedure", "complication.text", ("adverse_effects[].type",),
      reverse="not read back (words)", index=("complication",)),
    E("procedure", "complication.extension:iastm-adverse-effect-severity",
      ("adverse_effects[].severity",), "adverse_severity", "severity (required)",
      ("complication",)),
    E("procedure", "complication.extension:iastm-adverse-effect-expected",
      ("adverse_effects[].expected",), reverse="expected", index=("complication",)),
    E("procedure", "complication.extension:iastm-adverse-effect-site",
      ("adverse_effects[].site_index",), "body_site_local",
      "site_index: the bodySite equal to this copy", ("complication",)),
    E("procedure",
      "complication.extension:iastm-adverse-effect-site.valueCodeableConcept"
      ".extension:mcode-laterality-qualifier",
      ("adverse_effects[].site_index",), "laterality", "part of the site copy", ("complication",)),
    E("procedure",
      "complication.extension:iastm-adverse-effect-site.valueCodeableConcept"
      ".extension:mcode-body-location-qualifier",
      ("adverse_effects[].site_index",), "body_location_qualifier", "part of the site copy",
      ("complication",)),
    E("procedure", "note", ("notes",), reverse="notes"),
    # adjunct
    E("adjunct", "meta.profile", reverse=_PROFILE),
    E("adjunct", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("adjunct", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("adjunct", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("adjunct", "subject", ("patient",), reverse=_REF),
    E("adjunct", "encounter", ("session",), reverse=_REF),
    E("adjunct", "status", ("status",), reverse="status via docs/decisions.md#statuses",
      invariants=("iastm-proc-3",)),
    E("adjunct", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("adjunct", "code", ("adjunct_therapies[].type",), reverse="see the codings"),
    E("adjunct", "code.coding:iastm-adjunct", ("adjunct_therapies[].type",), "adjunct_local",
      "type: from this coding only"),
    E("adjunct", "code.coding:sct", ("adjunct_therapies[].type",), "adjunct_snomed",
      "not read back (many-to-one)"),
    E("adjunct", "code.text", ("adjunct_therapies[].text",), reverse="text"),
    E("adjunct", "extension:iastm-duration", ("adjunct_therapies[].minutes",), "ucum",
      "minutes (UCUM min)"),
    E("adjunct", "performedPeriod.start", ("session.start",),
      reverse="not read back (copied from the session)"),
    E("adjunct", "performedPeriod.end", ("session.end",),
      reverse="not read back (copied from the session)",
      invariants=("iastm-proc-1", "iastm-proc-9", "us-core-7")),
    E("adjunct", "performedDateTime", ("session.start",),
      reverse="not read back (receiver option performed_as_datetime)",
      invariants=("iastm-proc-9", "us-core-7")),
    E("adjunct", "performer", ("therapist", "clinic"), reverse=_REF),
    E("adjunct", "reasonReference", ("conditions",), reverse=_REF, invariants=("iastm-proc-7",)),
    # pain
    E("pain", "meta.profile", reverse=_PROFILE),
    E("pain", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("pain", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("pain", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("pain", "subject", ("patient",), reverse=_REF),
    E("pain", "encounter", ("session",), reverse=_REF),
    E("pain", "status", ("status",), reverse="status via docs/decisions.md#statuses"),
    E("pain", "category", table="fixed.category_survey", reverse="not read back (constant)"),
    E("pain", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("pain", "performer", ("therapist",), reverse=_REF),
    E("pain", "code", ("pain.scale",), "fixed.pain_loinc", "LOINC 72514-3 marks a pain score"),
    E("pain", "valueQuantity", ("pain.{timing}",), "ucum", "the score"),
    E("pain", "extension:iastm-measurement-timing", ("pain.{timing}",), "measurement_timing",
      _TIMING),
    E("pain", "effectiveDateTime", ("session.{when}",), reverse="not read back (session time)"),
    # rom
    E("rom", "meta.profile", reverse=_PROFILE),
    E("rom", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("rom", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("rom", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("rom", "subject", ("patient",), reverse=_REF),
    E("rom", "encounter", ("session",), reverse=_REF),
    E("rom", "status", ("status",), reverse="status via docs/decisions.md#statuses"),
    E("rom", "category", table="fixed.category_exam", reverse="not read back (constant)"),
    E("rom", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("rom", "performer", ("therapist",), reverse=_REF),
    E("rom", "code", ("rom[].joint", "rom[].motion"), "rom_code", "joint and motion"),
    E("rom", "valueQuantity", ("rom[].degrees",), "ucum", "degrees"),
    E("rom", "bodySite", ("rom[].laterality",), "rom_joint", "not read back (joint from code)"),
    E("rom", "bodySite.extension:mcode-laterality-qualifier", ("rom[].laterality",), "laterality",
      _LAT),
    E("rom", "method", ("rom[].method",), "rom_method", "method"),
    E("rom", "extension:iastm-rom-mode", ("rom[].mode",), reverse="mode"),
    E("rom", "extension:iastm-measurement-timing", ("rom[].timing",), "measurement_timing",
      _TIMING),
    E("rom", "effectiveDateTime", ("rom[].timing",), reverse="not read back (session time)"),
    # prom
    E("prom", "meta.profile", reverse=_PROFILE),
    E("prom", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("prom", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("prom", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("prom", "subject", ("patient",), reverse=_REF),
    E("prom", "encounter", ("session",), reverse=_REF),
    E("prom", "status", ("status",), reverse="status via docs/decisions.md#statuses"),
    E("prom", "category", table="fixed.category_survey, fixed.category_functional_status",
      reverse="not read back (constant)"),
    E("prom", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("prom", "performer", ("therapist",), reverse=_REF),
    E("prom", "code", ("outcome_measures[].instrument",), "prom_code", "instrument"),
    E("prom", "valueQuantity", ("outcome_measures[].score",), "ucum", "score"),
    E("prom", "component", ("outcome_measures[].items[]",), "fixed.psfs_item",
      "items: activity from code.text, score from valueQuantity", ("component",)),
    E("prom", "effectiveDateTime", ("session.start",), reverse="not read back (session time)"),
    # effect (expected mild adverse effects)
    E("effect", "meta.profile", reverse=_PROFILE),
    E("effect", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("effect", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("effect", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("effect", "subject", ("patient",), reverse=_REF),
    E("effect", "encounter", ("session",), reverse=_REF),
    E("effect", "status", ("status",), reverse="status via docs/decisions.md#statuses"),
    E("effect", "category", table="fixed.category_exam", reverse="not read back (constant)"),
    E("effect", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("effect", "performer", ("therapist",), reverse=_REF),
    E("effect", "code", ("adverse_effects[].type",), "adverse_effect",
      "type; the finding makes it an expected effect (expected: true)"),
    E("effect", "code.text", ("adverse_effects[].type",), reverse="not read back (words)"),
    E("effect", "valueCodeableConcept", ("adverse_effects[].severity",), "adverse_severity",
      "severity (mild)"),
    E("effect", "bodySite", ("adverse_effects[].site_index",), "body_site_local",
      "site_index: the Procedure bodySite equal to this one"),
    E("effect", "bodySite.extension:mcode-laterality-qualifier", ("adverse_effects[].site_index",),
      "laterality", "part of the site"),
    E("effect", "bodySite.extension:mcode-body-location-qualifier",
      ("adverse_effects[].site_index",), "body_location_qualifier", "part of the site"),
    E("effect", "effectiveDateTime", ("session.end",), reverse="not read back (session time)"),
    # screening (schema 2.0)
    E("screening", "meta.profile", reverse=_PROFILE),
    E("screening", "extension:source-record-version", ("record_version",), reverse=_VERSION),
    E("screening", "extension:source-record-hash", ("record_version",), reverse=_HASH),
    E("screening", "identifier:iastm-session-resource", ("session_id",), reverse=_KEY),
    E("screening", "partOf", reverse="links it to the session (docs/decisions.md#d11)"),
    E("screening", "status", ("status",),
      reverse="not read back (final; entered-in-error with the session)"),
    E("screening", "category", table="fixed.category_exam", reverse="not read back (constant)"),
    E("screening", "code", ("screening",), "screening.contraindication-screen",
      "marks the screening Observation"),
    E("screening", "code.text", ("screening",), reverse="not read back (words)"),
    E("screening", "subject", ("patient",), reverse=_REF),
    E("screening", "encounter", ("session",), reverse=_REF),
    E("screening", "effectiveDateTime", ("screening.performed_at",), reverse="performed_at"),
    E("screening", "performer", ("therapist",), reverse=_REF),
    E("screening", "component", ("screening",), reverse="one component per screening item"),
    E("screening", "component.code", ("screening.findings", "screening.anticoagulant_therapy",
      "screening.skin_intact", "screening.consent_obtained", "screening.override_reason"),
      "screening", "the item"),
    E("screening", "component.valueBoolean", ("screening.findings",
      "screening.anticoagulant_therapy", "screening.skin_intact", "screening.consent_obtained"),
      reverse="a finding is listed when true; the yes/no items as they are"),
    E("screening", "component.valueString", ("screening.override_reason",),
      reverse="override_reason"),
)

_NARRATIVE = "not read back: generated from the resource (docs/console.md#narrative)"
#: every resource carries a generated narrative (Resource.text)
ELEMENTS += tuple(E(k.name, "text", reverse=_NARRATIVE) for k in KINDS)
# fmt: on
KIND_BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def kind_of(resource: dict[str, object]) -> tuple[Kind, dict[str, str]] | None:
    """The kind of a mapped resource and its role's groups (None: not a resource we map)."""
    rtype = resource.get("resourceType")
    identifiers = resource.get("identifier")
    for ident in identifiers if isinstance(identifiers, list) else []:
        system = str(ident.get("system", "")) if isinstance(ident, dict) else ""
        if system.endswith("/sid/iastm-session-resource"):
            role = str(ident.get("value", "")).partition("/")[2]
            for kind in KINDS:
                match = _role_pattern(kind.role or "$^").match(role)
                if match and kind.resource_type == rtype:
                    return kind, match.groupdict()
            return None
    shared = [k for k in KINDS if k.role is None and k.resource_type == rtype]
    return (shared[0], {}) if shared else None


@cache
def _role_pattern(role: str) -> re.Pattern[str]:
    return re.compile(role)


@cache
def rows_of(kind: str) -> tuple[Element, ...]:
    """The rows of one kind, in table order (the table is constant: computed once per kind)."""
    return tuple(e for e in ELEMENTS if e.kind == kind)


__all__ = [
    "ELEMENTS",
    "KINDS",
    "KIND_BY_NAME",
    "SLICED",
    "Element",
    "Kind",
    "kind_of",
    "rows_of",
    "slice_name",
]
