"""The Encounter of one session (docs/mapping.md#encounter) and back.
"""

from __future__ import annotations

from fhir_iastm.mapping.codes import reverse_table
from fhir_iastm.mapping.condition import to_condition
from fhir_iastm.mapping.context import (
    ENCOUNTER,
    ORGANIZATION,
    PATIENT,
    PRACTITIONER,
    MappingContext,
    condition_role,
)
from fhir_iastm.mapping.datatypes import Json, codeable, period, prune, quantity, reference

ENCOUNTER_TYPE_TEXT = "Outpatient physical therapy visit"


def to_encounter(ctx: MappingContext) -> Json:
    """The visit: status (docs/decisions.md#statuses), class AMB, type 390906007, period (no end
    when cancelled)."""
    r = ctx.record
    return prune(
        {
            "resourceType": "Encounter",
            "meta": ctx.meta("iastm-encounter"),
            "contained": _contained(ctx),
            "extension": ctx.source_extensions(),
            "identifier": [ctx.session_identifier(ENCOUNTER)],
            "status": ctx.statuses[0],
            "class": ctx.codes.fixed("encounter_class"),
            "type": [_type(ctx)],
            "subject": ctx.reference(PATIENT),
            "participant": [
                {
                    "type": [codeable([ctx.codes.fixed("encounter_participant_primary")])],
                    "individual": ctx.reference(PRACTITIONER),
                }
            ],
            "period": period(r.session.start, r.session.end),
            "length": _length(ctx),
            "diagnosis": _diagnoses(ctx),
            "serviceProvider": ctx.reference(ORGANIZATION),
        }
    )


def _type(ctx: MappingContext) -> Json:
    """The visit kind (schema 2.0; local code, plus SNOMED 390906007 Follow-up encounter for a
    treatment visit); a 1.0 record's visit is typed follow-up."""
    kind = ctx.record.visit_kind
    if kind is None:
        return codeable([ctx.codes.fixed("encounter_type")], ENCOUNTER_TYPE_TEXT)
    local = ctx.codes["visit_kind"].coding(kind)
    snomed = [ctx.codes.fixed("encounter_type")] if kind == "treatment" else []
    return codeable([local, *snomed], f"Outpatient {local['display'].lower()}")


def _length(ctx: MappingContext) -> Json | None:
    """Encounter.length = session.duration_min (UCUM min)."""
    minutes = ctx.record.session.duration_min
    return None if minutes is None else quantity(minutes, ctx.codes["ucum"].coding("min"))


def _contained(ctx: MappingContext) -> list[Json]:
    """The record's Conditions when they are not sent as resources of their own (a cancelled
    session with ``emit_conditions_for_cancelled`` off, docs/decisions.md#cancelled-conditions):
    contained, ids ``condition-1..n`` in record order."""
    return [
        {"resourceType": "Condition", "id": contained_id(i), **_without_type(to_condition(ctx, c))}
        for i, c in enumerate(ctx.contained_conditions)
    ]


def _without_type(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k != "resourceType"}


def contained_id(index: int) -> str:
    """The local id of the ``index``-th contained Condition."""
    return f"condition-{index + 1}"


def _diagnoses(ctx: MappingContext) -> list[Json]:
    """One diagnosis per Condition (standalone or contained); ranks only when a primary exists
    (primary 1, others 2..n)."""
    conditions = ctx.conditions or ctx.contained_conditions
    refs = [ctx.url(condition_role(c.condition_id)) for c in ctx.conditions] or [
        f"#{contained_id(i)}" for i in range(len(ctx.contained_conditions))
    ]
    has_primary = any(c.is_primary for c in conditions)
    others = iter(range(2, len(conditions) + 2))
    out = []
    for c, ref in zip(conditions, refs, strict=True):
        rank = (1 if c.is_primary else next(others)) if has_primary else None
        out.append(prune({"condition": ctx.kept(reference(ref)), "rank": rank}))
    return out


def visit_kind(encounter: Json | None, base: str) -> str | None:
    """visit_kind from the iastm-visit-kind coding of Encounter.type (None: a 1.0 visit)."""
    table = reverse_table(base, "visit_kind")
    for concept in (encounter or {}).get("type") or []:
        for coding in concept.get("coding") or []:
            found = table.get((coding.get("system"), coding.get("code")))
            if found:
                return found
    return None


def primary_references(encounter: Json | None) -> set[str]:
    """The references of the diagnoses ranked 1 (the primary condition)."""
    return {
        d["condition"]["reference"]
        for d in (encounter or {}).get("diagnosis", ())
        if d.get("rank") == 1 and d.get("condition", {}).get("reference")
    }


def contained_conditions(encounter: Json | None) -> dict[str, Json]:
    """``#id`` -> each Condition contained in the Encounter."""
    return {
        f"#{r.get('id')}": r
        for r in (encounter or {}).get("contained") or []
        if isinstance(r, dict) and r.get("resourceType") == "Condition"
    }


__all__ = [
    "contained_conditions",
    "contained_id",
    "primary_references",
    "to_encounter",
    "visit_kind",
]
