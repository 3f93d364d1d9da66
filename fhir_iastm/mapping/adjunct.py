"""adjunct-therapy Procedures (docs/mapping.md#adjunct, docs/decisions.md#d11) and back.

Each adjunct is ``partOf`` the IASTM Procedure and carries ``reasonReference`` whatever its status,
so the pull query's ``_revinclude`` finds it.
"""

from __future__ import annotations

from fhir_iastm.mapping.codes import reverse_table, tables, unmapped
from fhir_iastm.mapping.context import ENCOUNTER, PATIENT, PROCEDURE, MappingContext, adjunct_role
from fhir_iastm.mapping.datatypes import (
    Json,
    codeable,
    codes_in,
    ext_value,
    extension,
    prune,
    quantity,
)
from fhir_iastm.mapping.procedure import adjunct_slot, performed, performers, reasons
from fhir_iastm.records.model import AdjunctTherapy


def to_adjunct(ctx: MappingContext, a: AdjunctTherapy) -> Json:
    """One adjunct Procedure; status, subject, encounter, period copied from the session."""
    r = ctx.record
    minutes = quantity(a.minutes, ctx.codes["ucum"].coding("min"))
    return prune(
        {
            "resourceType": "Procedure",
            "meta": ctx.meta("iastm-adjunct-procedure"),
            "extension": ctx.source_extensions()
            + [extension(ctx.ext_url("iastm-duration"), "Duration", minutes)],
            "identifier": [ctx.session_identifier(adjunct_role(a.type))],
            "partOf": [ctx.reference(PROCEDURE)],
            "status": ctx.statuses[1],
            "statusReason": codeable(text=r.status_reason) if r.status_reason else None,
            "code": codeable(_codings(ctx, a.type), a.text),
            "subject": ctx.reference(PATIENT),
            "encounter": ctx.reference(ENCOUNTER),
            **performed(ctx, *adjunct_slot(ctx, ctx.record.adjunct_therapies.index(a))),
            "performer": performers(ctx),
            "reasonReference": reasons(ctx),
        }
    )


def _codings(ctx: MappingContext, adjunct_type: str) -> list[Json]:
    codings = [ctx.codes["adjunct_local"].coding(adjunct_type)]
    codings += ctx.codes["adjunct_snomed"].codings(adjunct_type)
    return codings  # the session's CPT lines are on the IASTM Procedure (docs/codes.md#cpt)


def from_adjunct(resource: Json, base: str, where: str) -> Json:
    """Adjunct Procedure -> ``adjunct_therapies[]`` entry (type from the local coding only)."""
    code = resource.get("code") or {}
    local_system = tables(base)["adjunct_local"]["stretching"][0]["system"]
    found = codes_in(code, local_system)
    table = reverse_table(base, "adjunct_local")
    if len(found) != 1 or (local_system, found[0]) not in table:
        raise unmapped("adjunct_local", found or None, f"{where}.code")
    minutes = ext_value(resource, f"{base}/StructureDefinition/iastm-duration", "Duration") or {}
    return prune(
        {
            "type": table[(local_system, found[0])],
            "minutes": minutes.get("value"),
            "text": code.get("text"),
        }
    )


__all__ = ["from_adjunct", "to_adjunct"]
