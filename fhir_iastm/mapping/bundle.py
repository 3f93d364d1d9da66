"""One record -> one FHIR R4 transaction Bundle (docs/push.md#one-transaction,
docs/decisions.md#d5 to #d7).

Pure: no clock, no configuration; the same record and settings give a byte-identical Bundle.
"""

from __future__ import annotations

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.adjunct import to_adjunct
from fhir_iastm.mapping.condition import to_condition
from fhir_iastm.mapping.context import (
    ENCOUNTER,
    ORGANIZATION,
    PATIENT,
    PRACTITIONER,
    PROCEDURE,
    MappingContext,
    adjunct_role,
    condition_role,
)
from fhir_iastm.mapping.datatypes import Json
from fhir_iastm.mapping.effect import to_effects
from fhir_iastm.mapping.encounter import to_encounter
from fhir_iastm.mapping.ids import NPI_SYSTEM, conditional_url, identifier_query
from fhir_iastm.mapping.narrative import with_text
from fhir_iastm.mapping.observation import to_observations
from fhir_iastm.mapping.parties import patient_system, to_organization, to_patient, to_practitioner
from fhir_iastm.mapping.procedure import to_procedure
from fhir_iastm.mapping.screening import to_screening
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord


def to_fhir(
    record: SessionRecord,
    settings: MappingSettings | None = None,
    *,
    amended: frozenset[str] = frozenset(),
    narrative: bool = True,
) -> Json:
    """The transaction Bundle for one validated record (entries in the order parties, visit,
    diagnoses, session; docs/push.md#one-transaction).

    ``amended``: identifier values of Observations an earlier version had with another value
    (``mapping.amend.amended_identifiers``); they are sent with status ``amended``.
    ``narrative=False``: without each resource's ``text`` (for callers that need only the
    entries' ids and references, such as an export's Provenance)."""
    return mapped(record, settings, amended=amended, narrative=narrative)[0]


def mapped(
    record: SessionRecord,
    settings: MappingSettings | None = None,
    *,
    amended: frozenset[str] = frozenset(),
    narrative: bool = True,
) -> tuple[Json, list[Json]]:
    """:func:`to_fhir`'s Bundle, and every Reference its resources carry: each the very dict
    that sits in its resource, so the FHIR facade rewrites them in place without walking the
    resources (docs/performance.md#prepare)."""
    settings = settings or MappingSettings()
    ctx = MappingContext(record, settings, settings.record_hash or _hash(record), amended)
    r = record
    entries = [
        shared_entry(
            ctx, ORGANIZATION, to_organization(ctx), ctx.sid("clinic"), r.clinic.clinic_id
        ),
        shared_entry(ctx, PRACTITIONER, to_practitioner(ctx), NPI_SYSTEM, r.therapist.npi),
        shared_entry(ctx, PATIENT, to_patient(ctx), patient_system(ctx), r.patient.mrn),
        owned_entry(ctx, ENCOUNTER, to_encounter(ctx)),
        *(
            owned_entry(ctx, condition_role(c.condition_id), to_condition(ctx, c))
            for c in ctx.conditions
        ),
        owned_entry(ctx, PROCEDURE, to_procedure(ctx), ctx.sid("iastm-session"), r.session_id),
        *(owned_entry(ctx, adjunct_role(a.type), to_adjunct(ctx, a)) for a in r.adjunct_therapies),
        *(owned_entry(ctx, _role(ctx, o), o) for o in to_observations(ctx)),
        *(owned_entry(ctx, _role(ctx, o), o) for o in to_effects(ctx)),
        *(owned_entry(ctx, _role(ctx, o), o) for o in to_screening(ctx)),
    ]
    assert_distinct(entries)
    for entry in entries if narrative else ():  # each resource says in words what its data
        entry["resource"] = with_text(entry["resource"])  # says (docs/console.md)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, ctx.references


def _hash(record: SessionRecord) -> str:
    from fhir_iastm.records import record_hash  # lazy: keeps `import fhir_iastm.mapping` light

    return record_hash(record)


def _role(ctx: MappingContext, resource: Json) -> str:
    """The role of a session-owned resource is the tail of its session-resource identifier."""
    value: str = resource["identifier"][0]["value"]
    return value[len(ctx.record.session_id) + 1 :]


def shared_entry(ctx: MappingContext, role: str, resource: Json, system: str, value: str) -> Json:
    """Patient / Practitioner / Organization: POST + ifNoneExist, never PUT
    (docs/decisions.md#d5)."""
    return {
        "fullUrl": ctx.url(role),
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": identifier_query(system, value),
        },
    }


def owned_entry(
    ctx: MappingContext,
    role: str,
    resource: Json,
    system: str | None = None,
    value: str | None = None,
) -> Json:
    """Session-owned resources: conditional PUT on their business identifier, no id
    (docs/decisions.md#d6)."""
    if system is None or value is None:
        system = ctx.sid("iastm-session-resource")
        value = f"{ctx.record.session_id}/{role}"
    return {
        "fullUrl": ctx.url(role),
        "resource": resource,
        "request": {
            "method": "PUT",
            "url": conditional_url(resource["resourceType"], system, value),
        },
    }


def assert_distinct(entries: list[Json]) -> None:
    """Every fullUrl and every request.url of a Bundle is distinct (docs/decisions.md#d6)."""
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        for key in (entry["fullUrl"], entry["request"]["url"]):
            if key in seen:
                where = f"Bundle.entry[{i}]"
                raise MappingError(
                    f"{where}: {key} occurs twice in the Bundle",
                    [Issue("error", "duplicate", where, f"duplicate {key}", "E_DUPLICATE_KEY")],
                )
            seen.add(key)


__all__ = ["assert_distinct", "mapped", "owned_entry", "shared_entry", "to_fhir"]
