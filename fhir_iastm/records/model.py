"""The internal IASTM session record as frozen dataclasses
(docs/validation.md#record-validation, schema "1.0").

Attribute names are exactly the record's JSON keys; nested objects are nested dataclasses, arrays
are tuples (an absent array is an empty tuple), absent values are ``None``. Date-times and dates
keep the exact text the clinic sent (already validated by ``records.load_record``), so nothing is
re-formatted on the way to FHIR or back.

``records.load_record`` is the only validated way to build a ``SessionRecord``; ``to_dict`` is the
inverse (JSON-ready, absent values and empty arrays omitted); ``from_dict`` rebuilds a record that
was already validated (stored records) without validating it again.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Address:
    line: tuple[str, ...] = ()
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Clinic:
    clinic_id: str
    name: str
    npi: str
    address: Address | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    mrn: str
    family_name: str
    given_names: tuple[str, ...]
    birth_date: str
    gender: str
    phone: str | None = None
    email: str | None = None
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Therapist:
    npi: str
    family_name: str
    given_names: tuple[str, ...]
    credentials: tuple[str, ...] = ()
    license_state: str | None = None
    license_number: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    start: str
    session_number: int
    end: str | None = None
    duration_min: int | None = None
    planned_sessions: int | None = None
    plan_of_care_id: str | None = None
    #: schema 2.0: minutes of IASTM within the visit (the IASTM Procedure's own time)
    iastm_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Technique:
    code: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Instrument:
    code: str


@dataclass(frozen=True, slots=True)
class TreatmentSite:
    site: str
    laterality: str


@dataclass(frozen=True, slots=True)
class Condition:
    condition_id: str
    icd10cm: str
    text: str
    laterality: str
    verification_status: str
    snomed: str | None = None
    onset_date: str | None = None
    clinical_status: str | None = None
    is_primary: bool | None = None
    #: schema 2.0: index of the treated site this condition is treated at (treatment_sites)
    site_index: int | None = None


@dataclass(frozen=True, slots=True)
class Pain:
    scale: str
    pre: int | None = None
    post: int | None = None


@dataclass(frozen=True, slots=True)
class RangeOfMotion:
    joint: str
    motion: str
    laterality: str
    degrees: int | float
    mode: str
    method: str
    timing: str

    @property
    def key(self) -> str:
        """The natural key of docs/decisions.md#identifiers: joint-motion-laterality-mode-timing."""
        return f"{self.joint}-{self.motion}-{self.laterality}-{self.mode}-{self.timing}"


@dataclass(frozen=True, slots=True)
class PsfsItem:
    activity: str
    score: int | float


@dataclass(frozen=True, slots=True)
class OutcomeMeasure:
    instrument: str
    score: int | float
    items: tuple[PsfsItem, ...] = ()


@dataclass(frozen=True, slots=True)
class AdverseEffect:
    type: str
    severity: str
    site_index: int | None = None
    expected: bool | None = None


@dataclass(frozen=True, slots=True)
class AdjunctTherapy:
    type: str
    minutes: int
    text: str | None = None


@dataclass(frozen=True, slots=True)
class CptLine:
    code: str
    units: int


@dataclass(frozen=True, slots=True)
class Billing:
    cpt_lines: tuple[CptLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Screening:
    """Schema 2.0: the pre-treatment contraindication / precaution screening and consent
    (docs/clinical.md#screening)."""

    performed_at: str
    anticoagulant_therapy: bool
    skin_intact: bool
    consent_obtained: bool
    #: the contraindications and precautions found (codes of ``iastm-screening``)
    findings: tuple[str, ...] = ()
    #: why the session went ahead despite an absolute contraindication
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class IastmParameters:
    """Schema 2.0: how the IASTM was given (docs/clinical.md#iastm-parameters)."""

    strokes: tuple[str, ...] = ()
    pressure: str | None = None
    tolerance: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    schema_version: str
    session_id: str
    record_version: int
    status: str
    recorded_at: str
    clinic: Clinic
    patient: Patient
    therapist: Therapist
    session: Session
    technique: Technique
    treatment_sites: tuple[TreatmentSite, ...]
    conditions: tuple[Condition, ...]
    status_reason: str | None = None
    last_modified: str | None = None
    notes: str | None = None
    instruments: tuple[Instrument, ...] = ()
    pain: Pain | None = None
    rom: tuple[RangeOfMotion, ...] = ()
    outcome_measures: tuple[OutcomeMeasure, ...] = ()
    adverse_effects: tuple[AdverseEffect, ...] = ()
    adjunct_therapies: tuple[AdjunctTherapy, ...] = ()
    billing: Billing | None = None
    #: schema 2.0: evaluation / re-evaluation / treatment
    visit_kind: str | None = None
    #: schema 2.0: contraindication / precaution screening and consent
    screening: Screening | None = None
    #: schema 2.0: stroke types, pressure, tolerance
    iastm_parameters: IastmParameters | None = None


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(hint: Any, value: Any) -> Any:
    """``value`` (JSON) as ``hint``: a dataclass, a tuple of items, or the value itself."""
    if value is None:
        return None
    if isinstance(hint, types.UnionType):  # ``X | None``: the non-None member
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_build(item, v) for v in value)
    if is_dataclass(hint):
        return from_dict(hint, value)  # type: ignore[arg-type]
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass tree from a dict that ``records.load_record`` ALREADY accepted.

    No validation: use it only for trusted, stored records (the FHIR facade, export). Untrusted
    input always goes through ``records.load_record``. tests/test_model.py proves both give the
    same record."""
    hints = _hints(typing.cast(Any, cls))
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]  # cls is a dataclass type
    return cls(**{name: _build(hints[name], data[name]) for name in names if name in data})


def to_dict(value: Any) -> Any:
    """Dataclass tree -> JSON-ready dict; ``None`` values and empty arrays are omitted."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in fields(value):
            item = to_dict(getattr(value, f.name))
            if item is None or item == []:
                continue
            out[f.name] = item
        return out
    if isinstance(value, tuple):
        return [to_dict(v) for v in value]
    return value


__all__ = [
    "AdjunctTherapy",
    "Address",
    "AdverseEffect",
    "Billing",
    "Clinic",
    "Condition",
    "CptLine",
    "IastmParameters",
    "Instrument",
    "OutcomeMeasure",
    "Pain",
    "Patient",
    "PsfsItem",
    "RangeOfMotion",
    "Screening",
    "Session",
    "SessionRecord",
    "Technique",
    "Therapist",
    "TreatmentSite",
    "from_dict",
    "to_dict",
]
