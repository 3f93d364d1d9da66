"""Organization, Practitioner and Patient <-> clinic, therapist, patient (docs/mapping.md).

Shared resources carry no source-record extensions: they are
not session-derived (docs/decisions.md#d7) and are written with POST + ifNoneExist
(docs/decisions.md#d5).
"""

from __future__ import annotations

from fhir_iastm.mapping.context import ORGANIZATION, MappingContext
from fhir_iastm.mapping.datatypes import (
    Json,
    codeable,
    identifier,
    identifier_value,
    prune,
    telecom,
)
from fhir_iastm.mapping.ids import NPI_SYSTEM
from fhir_iastm.records.model import Address

LICENSE_TEXT = "State physical therapist license"


def address(value: Address | None, country: str | None = None) -> list[Json]:
    """A one-element Address list (empty when absent)."""
    if value is None:
        return []
    return [
        prune(
            {
                "line": list(value.line),
                "city": value.city,
                "state": value.state,
                "postalCode": value.postal_code,
                "country": country,
            }
        )
    ]


def to_organization(ctx: MappingContext) -> Json:
    """The clinic (docs/mapping.md#organization); keyed on ``{CANON}/sid/clinic`` with the NPI
    second (docs/decisions.md#d5)."""
    clinic = ctx.record.clinic
    return prune(
        {
            "resourceType": "Organization",
            "meta": ctx.meta("iastm-organization"),
            "identifier": [
                identifier(ctx.sid("clinic"), clinic.clinic_id),
                identifier(NPI_SYSTEM, clinic.npi),
            ],
            "active": True,
            "name": clinic.name,
            "telecom": [telecom("phone", clinic.phone, "work")] if clinic.phone else [],
            "address": address(clinic.address, country="US"),
        }
    )


def to_practitioner(ctx: MappingContext) -> Json:
    """The treating PT (docs/mapping.md#practitioner)."""
    t = ctx.record.therapist
    return prune(
        {
            "resourceType": "Practitioner",
            "meta": ctx.meta("iastm-practitioner"),
            "identifier": [identifier(NPI_SYSTEM, t.npi)],
            "name": [
                prune(
                    {
                        "family": t.family_name,
                        "given": list(t.given_names),
                        "suffix": list(t.credentials),
                    }
                )
            ],
            "qualification": _qualification(ctx),
        }
    )


def _qualification(ctx: MappingContext) -> list[Json]:
    t = ctx.record.therapist
    if t.license_number is None:
        return []
    system = ctx.sid("state-license" + (f"/{t.license_state}" if t.license_state else ""))
    return [
        {"identifier": [identifier(system, t.license_number)], "code": codeable(text=LICENSE_TEXT)}
    ]


def patient_system(ctx: MappingContext) -> str:
    """``{CANON}/sid/clinic/{clinic_id}/mrn`` (docs/decisions.md#identifiers)."""
    return ctx.sid(f"clinic/{ctx.record.clinic.clinic_id}/mrn")


def to_patient(ctx: MappingContext) -> Json:
    """The patient (docs/mapping.md#patient)."""
    p = ctx.record.patient
    return prune(
        {
            "resourceType": "Patient",
            "meta": ctx.meta("iastm-patient"),
            "identifier": [
                identifier(patient_system(ctx), p.mrn, ctx.codes.fixed("identifier_type_mr"))
            ],
            "name": [{"family": p.family_name, "given": list(p.given_names)}],
            "telecom": [c for c in (telecom("phone", p.phone), telecom("email", p.email)) if c],
            "gender": p.gender,
            "birthDate": p.birth_date,
            "address": address(p.address),
            "managingOrganization": ctx.reference(ORGANIZATION),
        }
    )


# ---------------------------------------------------------------- reverse


def from_address(resource: Json) -> Json | None:
    """The first Address back as a record address (``country`` is dropped: the mapper adds it)."""
    found = resource.get("address") or []
    if not found:
        return None
    a = found[0]
    return (
        prune(
            {
                "line": a.get("line"),
                "city": a.get("city"),
                "state": a.get("state"),
                "postal_code": a.get("postalCode"),
            }
        )
        or None
    )


def _telecom(resource: Json, system: str) -> str | None:
    for c in resource.get("telecom", ()):
        if c.get("system") == system:
            return c.get("value")
    return None


def from_organization(resource: Json, base: str) -> Json:
    """Organization -> ``clinic``."""
    return prune(
        {
            "clinic_id": identifier_value(resource, f"{base}/sid/clinic"),
            "name": resource.get("name"),
            "npi": identifier_value(resource, NPI_SYSTEM),
            "address": from_address(resource),
            "phone": _telecom(resource, "phone"),
        }
    )


def from_practitioner(resource: Json, base: str) -> Json:
    """Practitioner -> ``therapist``."""
    name = (resource.get("name") or [{}])[0]
    out = {
        "npi": identifier_value(resource, NPI_SYSTEM),
        "family_name": name.get("family"),
        "given_names": name.get("given"),
        "credentials": name.get("suffix"),
    }
    prefix = f"{base}/sid/state-license"
    for qual in resource.get("qualification", ()):
        for ident in qual.get("identifier", ()):
            system = ident.get("system", "")
            if system == prefix or system.startswith(prefix + "/"):
                out["license_number"] = ident.get("value")
                out["license_state"] = system[len(prefix) + 1 :] or None
    return prune(out)


def from_patient(resource: Json, base: str, clinic_id: str | None) -> Json:
    """Patient -> ``patient`` (MRN from ``{CANON}/sid/clinic/{clinic_id}/mrn``)."""
    name = (resource.get("name") or [{}])[0]
    return prune(
        {
            "mrn": identifier_value(resource, f"{base}/sid/clinic/{clinic_id}/mrn"),
            "family_name": name.get("family"),
            "given_names": name.get("given"),
            "birth_date": resource.get("birthDate"),
            "gender": resource.get("gender"),
            "phone": _telecom(resource, "phone"),
            "email": _telecom(resource, "email"),
            "address": from_address(resource),
        }
    )


__all__ = [
    "from_organization",
    "from_patient",
    "from_practitioner",
    "patient_system",
    "to_organization",
    "to_patient",
    "to_practitioner",
]
