"""Marshmallow 4 schemas of the internal session record (docs/validation.md,
docs/decisions.md#d16 to #d20).

One schema per nested object, ``unknown = RAISE``; ``@post_load`` builds the frozen dataclasses of
``fhir_iastm.records.model`` with the values exactly as sent (arrays become tuples, nothing is
normalised).
These schemas check each field on its own (type, required, format, range, code lists, ICD-10-CM,
NPI); rules that read several fields live in ``fhir_iastm.records.cross_field``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validates_schema

from fhir_iastm.records import model
from fhir_iastm.records.checks import (
    CPT_RE,
    EMAIL_RE,
    IDENTIFIER_RE,
    INTEGER_SCORES,
    NOTES_MAX,
    POSTAL_RE,
    SCORE_RANGES,
    SESSION_ID_RE,
    SHORT_MAX,
    TEXT_MAX,
    check_date,
    check_datetime,
    check_icd10cm,
    check_npi,
    check_partial_date,
    check_schema_version,
    check_snomed,
    check_usps,
    pattern,
)
from fhir_iastm.records.fields import Array, Bool, Code, Int, Number, Text
from fhir_iastm.records.vocab import (
    ADJUNCT_TYPES,
    ADVERSE_TYPES,
    CLINICAL_STATUSES,
    CONDITION_LATERALITIES,
    GENDERS,
    INSTRUMENTS,
    OUTCOME_INSTRUMENTS,
    PAIN_SCALES,
    PRESSURES,
    ROM_JOINTS,
    ROM_LATERALITIES,
    ROM_METHODS,
    ROM_MODES,
    ROM_MOTIONS,
    ROM_MOTIONS_BY_JOINT,
    SCREENING_FINDINGS,
    SEVERITIES,
    SITE_LATERALITIES,
    SITES,
    STATUSES,
    STROKES,
    TECHNIQUES,
    TIMINGS,
    TOLERANCES,
    VERIFICATION_STATUSES,
    VISIT_KINDS,
)


def _short(what: str, required: bool = True) -> Text:
    return Text(max_len=SHORT_MAX, required=required, what=what)


def _ident(what: str, *, echo: bool = True) -> Text:
    check = pattern(IDENTIFIER_RE, what, echo=echo)
    return Text(max_len=64, required=True, check=check, what=what)


def _nested(schema: type[Schema], *, required: bool, what: str) -> fields.Nested:
    need = "E_REQUIRED|" if required else "E_TYPE|"
    return fields.Nested(
        schema,
        required=required,
        allow_none=not required,
        error_messages={
            "required": f"E_REQUIRED|{what} is required",
            "null": f"{need}{what} must not be null",
            "type": f"E_TYPE|{what} must be an object",
        },
    )


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    """Lists become tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


class _Base(Schema):
    """``unknown = RAISE`` and coded messages for wrong object types and unknown fields."""

    class Meta:
        unknown = RAISE

    error_messages = {
        "type": "E_TYPE|expected a JSON object",
        "unknown": "E_UNKNOWN_FIELD|field is not part of the record contract",
    }
    target: type = dict

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Any:
        # An explicit null of an optional field becomes the dataclass default (None or ()).
        return self.target(**{k: v for k, v in _tuples(data).items() if v is not None})


class AddressSchema(_Base):
    target = model.Address
    line = Array(_short("address line"), max_items=4, what="address line")
    city = _short("city", required=False)
    state = Text(max_len=2, check=check_usps, what="state")
    postal_code = Text(max_len=10, check=pattern(POSTAL_RE, "postal_code"), what="postal_code")


class ClinicSchema(_Base):
    target = model.Clinic
    clinic_id = _ident("clinic_id")
    name = _short("clinic name")
    npi = Text(max_len=10, required=True, check=check_npi, what="clinic NPI")
    address = _nested(AddressSchema, required=False, what="address")
    phone = Text(max_len=40, what="phone")


class PatientSchema(_Base):
    target = model.Patient
    mrn = _ident("mrn", echo=False)
    family_name = _short("family_name")
    given_names = Array(
        _short("given name"), required=True, min_items=1, max_items=10, what="given_names"
    )
    birth_date = Text(max_len=10, required=True, check=check_date, what="birth_date")
    gender = Code(GENDERS, what="gender")
    phone = Text(max_len=40, what="phone")
    email = Text(max_len=SHORT_MAX, check=pattern(EMAIL_RE, "email"), what="email")
    address = _nested(AddressSchema, required=False, what="address")


class TherapistSchema(_Base):
    target = model.Therapist
    npi = Text(max_len=10, required=True, check=check_npi, what="therapist NPI")
    family_name = _short("family_name")
    given_names = Array(
        _short("given name"), required=True, min_items=1, max_items=10, what="given_names"
    )
    credentials = Array(
        Text(max_len=20, required=True, what="credential"), max_items=10, what="credentials"
    )
    license_state = Text(max_len=2, check=check_usps, what="license_state")
    license_number = _short("license_number", required=False)


def _dt(what: str, required: bool) -> Text:
    return Text(max_len=40, required=required, check=check_datetime, what=what)


class SessionSchema(_Base):
    target = model.Session
    start = _dt("session.start", True)
    end = _dt("session.end", False)
    duration_min = Int(minimum=0, range_code="E_FORMAT", what="duration_min")
    session_number = Int(required=True, minimum=1, range_code="E_FORMAT", what="session_number")
    planned_sessions = Int(minimum=1, range_code="E_FORMAT", what="planned_sessions")
    plan_of_care_id = _short("plan_of_care_id", required=False)
    iastm_minutes = Int(minimum=1, maximum=1440, range_code="E_FORMAT", what="iastm_minutes")


class TechniqueSchema(_Base):
    target = model.Technique
    code = Code(TECHNIQUES, what="technique")
    text = Text(max_len=TEXT_MAX, what="technique text")


class InstrumentSchema(_Base):
    target = model.Instrument
    code = Code(INSTRUMENTS, what="instrument")


class TreatmentSiteSchema(_Base):
    target = model.TreatmentSite
    site = Code(SITES, what="site")
    laterality = Code(SITE_LATERALITIES, what="laterality")


class ConditionSchema(_Base):
    target = model.Condition
    condition_id = _ident("condition_id")
    icd10cm = Text(max_len=8, required=True, check=check_icd10cm, what="icd10cm")
    snomed = Text(max_len=18, check=check_snomed, what="snomed")
    text = Text(max_len=TEXT_MAX, required=True, what="condition text")
    laterality = Code(CONDITION_LATERALITIES, what="laterality")
    onset_date = Text(max_len=10, check=check_partial_date, what="onset_date")
    clinical_status = Code(CLINICAL_STATUSES, required=False, what="clinical_status")
    verification_status = Code(VERIFICATION_STATUSES, what="verification_status")
    is_primary = Bool(what="is_primary")
    site_index = Int(minimum=0, range_code="E_REF", what="site_index")


class PainSchema(_Base):
    target = model.Pain
    scale = Code(PAIN_SCALES, what="pain scale")
    pre = Int(minimum=0, maximum=10, what="NRS pain score")
    post = Int(minimum=0, maximum=10, what="NRS pain score")


class RangeOfMotionSchema(_Base):
    target = model.RangeOfMotion
    joint = Code(ROM_JOINTS, what="joint")
    motion = Code(ROM_MOTIONS, what="motion")
    laterality = Code(ROM_LATERALITIES, what="laterality")
    degrees = Number(minimum=-30, maximum=180, what="degrees")
    mode = Code(ROM_MODES, what="mode")
    method = Code(ROM_METHODS, what="method")
    timing = Code(TIMINGS, what="timing")

    @validates_schema
    def _motion_fits_joint(self, data: dict[str, Any], **_: Any) -> None:
        """Only the docs/codes.md#project-code-systems pairs can be coded (E_CODE_UNKNOWN). Skipped
        on field errors."""
        allowed = ROM_MOTIONS_BY_JOINT[data["joint"]]
        if data["motion"] not in allowed:
            message = (
                f"E_CODE_UNKNOWN|motion {data['motion']!r} is not measured at the {data['joint']};"
                f" expected {'|'.join(allowed)}"
            )
            raise ValidationError(message, field_name="motion")


class PsfsItemSchema(_Base):
    target = model.PsfsItem
    activity = Text(max_len=TEXT_MAX, required=True, what="activity")
    score = Number(minimum=0, maximum=10, what="PSFS item score")


class OutcomeMeasureSchema(_Base):
    target = model.OutcomeMeasure
    instrument = Code(OUTCOME_INSTRUMENTS, what="instrument")
    score = Number(minimum=-1e9, maximum=1e9, what="score")
    items = Array(
        _nested(PsfsItemSchema, required=True, what="PSFS item"), max_items=10, what="items"
    )

    @validates_schema
    def _score_fits_instrument(self, data: dict[str, Any], **_: Any) -> None:
        """docs/validation.md#record-validation per-instrument ranges (E_RANGE); PSFS alone has
        items. Skipped on field errors."""
        instrument, score = data["instrument"], data["score"]
        low, high = SCORE_RANGES[instrument]
        whole = instrument in INTEGER_SCORES
        if not low <= score <= high or (whole and not isinstance(score, int)):
            kind = "an integer " if whole else ""
            message = f"E_RANGE|{instrument} score must be {kind}{low}-{high}, got {score}"
            raise ValidationError(message, field_name="score")
        if data.get("items") and instrument != "PSFS":
            raise ValidationError(
                f"E_FORMAT|items are only allowed for PSFS, not {instrument}", field_name="items"
            )


class AdverseEffectSchema(_Base):
    target = model.AdverseEffect
    type = Code(ADVERSE_TYPES, what="adverse effect type")
    severity = Code(SEVERITIES, what="severity")
    site_index = Int(what="site_index")
    expected = Bool(what="expected")


class AdjunctTherapySchema(_Base):
    target = model.AdjunctTherapy
    type = Code(ADJUNCT_TYPES, what="adjunct type")
    minutes = Int(required=True, minimum=1, maximum=1440, range_code="E_FORMAT", what="minutes")
    text = Text(max_len=TEXT_MAX, what="adjunct text")


class CptLineSchema(_Base):
    target = model.CptLine
    code = Text(
        max_len=5, required=True, check=pattern(CPT_RE, "CPT code", echo=True), what="CPT code"
    )
    units = Int(required=True, minimum=1, maximum=99, range_code="E_FORMAT", what="units")


class BillingSchema(_Base):
    target = model.Billing
    cpt_lines = Array(
        _nested(CptLineSchema, required=True, what="CPT line"), max_items=20, what="cpt_lines"
    )


class ScreeningSchema(_Base):
    target = model.Screening
    performed_at = _dt("screening.performed_at", True)
    anticoagulant_therapy = Bool(required=True, what="anticoagulant_therapy")
    skin_intact = Bool(required=True, what="skin_intact")
    consent_obtained = Bool(required=True, what="consent_obtained")
    findings = Array(
        Code(SCREENING_FINDINGS, what="screening finding"),
        max_items=len(SCREENING_FINDINGS),
        what="findings",
    )
    override_reason = Text(max_len=TEXT_MAX, what="override_reason")


class IastmParametersSchema(_Base):
    target = model.IastmParameters
    strokes = Array(Code(STROKES, what="stroke"), max_items=len(STROKES), what="strokes")
    pressure = Code(PRESSURES, required=False, what="pressure")
    tolerance = Code(TOLERANCES, required=False, what="tolerance")


def _list(schema: type[Schema], what: str, *, required: bool = False) -> Array:
    return Array(
        _nested(schema, required=True, what=what),
        required=required,
        min_items=1 if required else 0,
        what=what,
    )


class SessionRecordSchema(_Base):
    target = model.SessionRecord
    schema_version = Text(
        max_len=10, required=True, check=check_schema_version, what="schema_version"
    )
    session_id = Text(
        max_len=64,
        required=True,
        check=pattern(SESSION_ID_RE, "session_id", echo=True),
        what="session_id",
    )
    record_version = Int(required=True, minimum=1, range_code="E_FORMAT", what="record_version")
    status = Code(STATUSES, what="status")
    status_reason = Text(max_len=TEXT_MAX, what="status_reason")
    recorded_at = _dt("recorded_at", True)
    last_modified = _dt("last_modified", False)
    notes = Text(max_len=NOTES_MAX, what="notes")
    clinic = _nested(ClinicSchema, required=True, what="clinic")
    patient = _nested(PatientSchema, required=True, what="patient")
    therapist = _nested(TherapistSchema, required=True, what="therapist")
    session = _nested(SessionSchema, required=True, what="session")
    technique = _nested(TechniqueSchema, required=True, what="technique")
    instruments = _list(InstrumentSchema, "instrument")
    treatment_sites = _list(TreatmentSiteSchema, "treatment_sites", required=True)
    conditions = _list(ConditionSchema, "conditions", required=True)
    pain = _nested(PainSchema, required=False, what="pain")
    rom = _list(RangeOfMotionSchema, "rom")
    outcome_measures = _list(OutcomeMeasureSchema, "outcome_measures")
    adverse_effects = _list(AdverseEffectSchema, "adverse_effects")
    adjunct_therapies = _list(AdjunctTherapySchema, "adjunct_therapies")
    billing = _nested(BillingSchema, required=False, what="billing")
    visit_kind = Code(VISIT_KINDS, required=False, what="visit_kind")
    screening = _nested(ScreeningSchema, required=False, what="screening")
    iastm_parameters = _nested(IastmParametersSchema, required=False, what="iastm_parameters")


RECORD_SCHEMA = SessionRecordSchema()
