"""The IASTM session Procedure (docs/mapping.md#procedure, docs/decisions.md#d7, #d11, #d22) —
forward builder.

The reverse lives in ``procedure_reverse.py``.
"""

from __future__ import annotations

from fhir_iastm.mapping.condition import laterality_extension
from fhir_iastm.mapping.context import (
    ENCOUNTER,
    ORGANIZATION,
    PATIENT,
    PRACTITIONER,
    PROCEDURE,
    MappingContext,
    condition_role,
)
from fhir_iastm.mapping.datatypes import (
    Json,
    codeable,
    extension,
    extensions,
    identifier,
    period,
    prune,
    reference,
)
from fhir_iastm.mapping.ids import MCODE_LOCATION
from fhir_iastm.records.model import AdverseEffect, TreatmentSite


def to_procedure(ctx: MappingContext) -> Json:
    """The IASTM session Procedure, in R4 element order."""
    r = ctx.record
    return prune(
        {
            "resourceType": "Procedure",
            "meta": ctx.meta("iastm-procedure"),
            "extension": ctx.source_extensions() + _session_extensions(ctx),
            "identifier": [
                identifier(ctx.sid("iastm-session"), r.session_id),
                ctx.session_identifier(PROCEDURE),
            ],
            "basedOn": [_plan_of_care(ctx)] if r.session.plan_of_care_id else [],
            "status": ctx.statuses[1],
            "statusReason": codeable(text=r.status_reason) if r.status_reason else None,
            "code": codeable(_procedure_codings(ctx), _procedure_text(ctx)),
            "subject": reference(ctx.url(PATIENT)),
            "encounter": reference(ctx.url(ENCOUNTER)),
            "performedPeriod": performed(ctx),
            "performer": performers(ctx),
            "reasonReference": reasons(ctx),
            "bodySite": [body_site(ctx, s) for s in r.treatment_sites],
            "complication": [_complication(ctx, a) for a in r.adverse_effects],
            "note": [{"text": r.notes}] if r.notes else [],
            "usedCode": [codeable([ctx.codes["instrument"].coding(i.code)]) for i in r.instruments],
        }
    )


def _session_extensions(ctx: MappingContext) -> list[Json]:
    r = ctx.record
    technique = codeable([ctx.codes["technique"].coding(r.technique.code)], r.technique.text)
    return extensions(
        extension(ctx.ext_url("iastm-technique"), "CodeableConcept", technique),
        extension(ctx.ext_url("iastm-session-number"), "PositiveInt", r.session.session_number),
        extension(ctx.ext_url("iastm-planned-sessions"), "PositiveInt", r.session.planned_sessions),
    )


def _plan_of_care(ctx: MappingContext) -> Json:
    """Identifier-only reference to the plan of care (docs/mapping.md#procedure)."""
    return {
        "type": "CarePlan",
        "identifier": identifier(ctx.sid("plan-of-care"), ctx.record.session.plan_of_care_id or ""),
    }


def _procedure_codings(ctx: MappingContext) -> list[Json]:
    codings = [ctx.codes.fixed("procedure_snomed"), ctx.codes.fixed("procedure_local")]
    if ctx.settings.include_cpt:
        codings.append(ctx.codes.fixed("procedure_cpt"))
    return codings


def _procedure_text(ctx: MappingContext) -> str:
    t = ctx.record.technique
    brand = (
        t.text
        if t.code == "iastm-other" and t.text
        else ctx.codes["technique"].coding(t.code)["display"]
    )
    return f"Instrument-assisted soft tissue mobilization ({brand})"


def performed(ctx: MappingContext) -> Json | None:
    """performedPeriod for completed / entered-in-error; none for not-done
    (docs/decisions.md#statuses, us-core-7)."""
    s = ctx.record.session
    return None if ctx.record.status == "cancelled" else period(s.start, s.end)


def performers(ctx: MappingContext) -> list[Json]:
    """The PT on behalf of the clinic."""
    return [
        {"actor": reference(ctx.url(PRACTITIONER)), "onBehalfOf": reference(ctx.url(ORGANIZATION))}
    ]


def reasons(ctx: MappingContext) -> list[Json]:
    """reasonReference -> every emitted Condition, whatever the status (docs/decisions.md#d11)."""
    return [reference(ctx.url(condition_role(c.condition_id))) for c in ctx.conditions]


def body_site(ctx: MappingContext, site: TreatmentSite) -> Json:
    """Local + SNOMED site codings, mCODE laterality (1..1) and location qualifier, text
    (docs/mapping.md#procedure)."""
    codes = ctx.codes
    lat = laterality_extension(ctx, site.laterality)
    qualifiers = codes["body_location_qualifier"].codings(site.site)
    loc = extension(MCODE_LOCATION, "CodeableConcept", codeable(qualifiers)) if qualifiers else None
    local = codes["body_site_local"].coding(site.site)
    text = f"{site.laterality} {local['display'].lower()}"
    return codeable(
        [local, codes["body_site_snomed"].coding(site.site)], text, extensions(lat, loc)
    )


def _complication(ctx: MappingContext, effect: AdverseEffect) -> Json:
    codes = ctx.codes
    severity = codeable([codes["adverse_severity"].coding(effect.severity)])
    site = None
    if effect.site_index is not None:
        site = body_site(ctx, ctx.record.treatment_sites[effect.site_index])
    finding = codes["adverse_effect"].coding(effect.type)
    return codeable(
        [finding],
        f"{effect.severity} {finding['display'].lower()}",
        extensions(
            extension(ctx.ext_url("iastm-adverse-effect-severity"), "CodeableConcept", severity),
            extension(ctx.ext_url("iastm-adverse-effect-expected"), "Boolean", effect.expected),
            extension(ctx.ext_url("iastm-adverse-effect-site"), "CodeableConcept", site),
        ),
    )


__all__ = ["body_site", "performed", "performers", "reasons", "to_procedure"]
