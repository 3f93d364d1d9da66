"""The Encounter of one session (docs/mapping.md#encounter) and back.
"""

from __future__ import annotations

from fhir_iastm.mapping.context import (
    ENCOUNTER,
    ORGANIZATION,
    PATIENT,
    PRACTITIONER,
    MappingContext,
    condition_role,
)
from fhir_iastm.mapping.datatypes import Json, codeable, period, prune, reference

ENCOUNTER_TYPE_TEXT = "Outpatient physical therapy visit"


def to_encounter(ctx: MappingContext) -> Json:
    """The visit: status (docs/decisions.md#statuses), class AMB, type 390906007, period (no end
    when cancelled)."""
    r = ctx.record
    return prune(
        {
            "resourceType": "Encounter",
            "meta": ctx.meta("iastm-encounter"),
            "extension": ctx.source_extensions(),
            "identifier": [ctx.session_identifier(ENCOUNTER)],
            "status": ctx.statuses[0],
            "class": ctx.codes.fixed("encounter_class"),
            "type": [codeable([ctx.codes.fixed("encounter_type")], ENCOUNTER_TYPE_TEXT)],
            "subject": reference(ctx.url(PATIENT)),
            "participant": [{"individual": reference(ctx.url(PRACTITIONER))}],
            "period": period(r.session.start, r.session.end),
            "diagnosis": _diagnoses(ctx),
            "serviceProvider": reference(ctx.url(ORGANIZATION)),
        }
    )


def _diagnoses(ctx: MappingContext) -> list[Json]:
    """One diagnosis per Condition; ranks only when a primary exists (primary 1, others 2..n)."""
    has_primary = any(c.is_primary for c in ctx.conditions)
    others = iter(range(2, len(ctx.conditions) + 2))
    out = []
    for c in ctx.conditions:
        rank = (1 if c.is_primary else next(others)) if has_primary else None
        out.append(
            prune({"condition": reference(ctx.url(condition_role(c.condition_id))), "rank": rank})
        )
    return out


def primary_references(encounter: Json | None) -> set[str]:
    """The references of the diagnoses ranked 1 (the primary condition)."""
    return {
        d["condition"]["reference"]
        for d in (encounter or {}).get("diagnosis", ())
        if d.get("rank") == 1 and d.get("condition", {}).get("reference")
    }


__all__ = ["primary_references", "to_encounter"]
