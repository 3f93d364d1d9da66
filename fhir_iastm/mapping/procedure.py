"""The IASTM session Procedure (docs/mapping.md#procedure, docs/decisions.md#d7, #d11, #d22) —
forward builder.

The reverse lives in ``procedure_reverse.py``.
"""

from __future__ import annotations

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
    ext,
    extension,
    extensions,
    identifier,
    period,
    plus_minutes,
    prune,
    quantity,
)
from fhir_iastm.mapping.sites import body_site
from fhir_iastm.records.model import AdverseEffect

#: CPT (docs/codes.md#cpt): only with include_cpt, the record's billing lines, never a display
CPT = "http://www.ama-assn.org/go/cpt"


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
            "subject": ctx.reference(PATIENT),
            "encounter": ctx.reference(ENCOUNTER),
            **performed(ctx, *iastm_slot(ctx)),
            "performer": performers(ctx),
            "reasonReference": reasons(ctx),
            "bodySite": [body_site(ctx, s) for s in r.treatment_sites],
            "complication": [
                _complication(ctx, a) for a in r.adverse_effects if not is_expected_finding(a)
            ],
            "note": [{"text": r.notes}] if r.notes else [],
            "usedCode": [codeable([ctx.codes["instrument"].coding(i.code)]) for i in r.instruments],
        }
    )


def _session_extensions(ctx: MappingContext) -> list[Json]:
    r = ctx.record
    technique = codeable([ctx.codes["technique"].coding(r.technique.code)], r.technique.text)
    minutes = r.session.iastm_minutes
    duration = None if minutes is None else quantity(minutes, ctx.codes["ucum"].coding("min"))
    version = None if r.schema_version == "1.0" else r.schema_version
    return extensions(
        extension(ctx.ext_url("iastm-technique"), "CodeableConcept", technique),
        extension(ctx.ext_url("iastm-session-number"), "PositiveInt", r.session.session_number),
        extension(ctx.ext_url("iastm-planned-sessions"), "PositiveInt", r.session.planned_sessions),
        extension(ctx.ext_url("iastm-duration"), "Duration", duration),
        extension(ctx.ext_url("source-schema-version"), "String", version),
        # no Condition carries recordedDate (docs/clinical.md#cancelled-recorded-at)
        extension(
            ctx.ext_url("source-recorded-at"),
            "DateTime",
            None if ctx.conditions else r.recorded_at,
        ),
        *_parameter_extensions(ctx),
    )


def _parameter_extensions(ctx: MappingContext) -> list[Json | None]:
    """iastm_parameters (schema 2.0): one iastm-stroke per stroke, iastm-pressure,
    iastm-tolerance (docs/clinical.md#iastm-parameters)."""
    p = ctx.record.iastm_parameters
    if p is None:
        return []

    def one(name: str, value: str | None) -> Json | None:
        if value is None:
            return None
        concept = codeable([ctx.codes[f"iastm_{name}"].coding(value)])
        return extension(ctx.ext_url(f"iastm-{name}"), "CodeableConcept", concept)

    return [*(one("stroke", s) for s in p.strokes), one("pressure", p.pressure),
            one("tolerance", p.tolerance)]  # fmt: skip


def _plan_of_care(ctx: MappingContext) -> Json:
    """Identifier-only reference to the plan of care (docs/mapping.md#procedure)."""
    return {
        "type": "CarePlan",
        "identifier": identifier(ctx.sid("plan-of-care"), ctx.record.session.plan_of_care_id or ""),
    }


def _procedure_codings(ctx: MappingContext) -> list[Json]:
    codings: list[Json] = [ctx.codes.fixed("procedure_snomed"), ctx.codes.fixed("procedure_local")]
    if ctx.settings.include_cpt and ctx.record.billing is not None:
        units = ctx.ext_url("iastm-cpt-units")
        codings += [
            {"extension": [ext(units, "PositiveInt", line.units)], "system": CPT, "code": line.code}
            for line in ctx.record.billing.cpt_lines
        ]
    return codings


def _procedure_text(ctx: MappingContext) -> str:
    t = ctx.record.technique
    brand = (
        t.text
        if t.code == "iastm-other" and t.text
        else ctx.codes["technique"].coding(t.code)["display"]
    )
    return f"Instrument-assisted soft tissue mobilization ({brand})"


def performed(ctx: MappingContext, start: str | None = None, end: str | None = None) -> Json:
    """performedPeriod for completed / entered-in-error; none for not-done
    (docs/decisions.md#statuses, us-core-7): the procedure's own ``start``-``end`` when the record
    gives its minutes (schema 2.0), else the visit's. With the ``performed_as_datetime`` receiver
    option, ``performedDateTime`` = that start (the visit's period stays on the Encounter)."""
    s = ctx.record.session
    if ctx.record.status == "cancelled":
        return {}
    start, end = (start, end) if start else (s.start, s.end)
    if ctx.settings.performed_as_datetime:
        return {"performedDateTime": start}
    return {"performedPeriod": period(start, end)}


def iastm_slot(ctx: MappingContext) -> tuple[str | None, str | None]:
    """The IASTM part of the visit (schema 2.0): ``iastm_minutes`` from the visit start."""
    s = ctx.record.session
    if s.iastm_minutes is None or ctx.record.status == "cancelled":
        return None, None
    return s.start, plus_minutes(s.start, s.iastm_minutes)


def adjunct_slot(ctx: MappingContext, index: int) -> tuple[str | None, str | None]:
    """An adjunct's part of the visit (schema 2.0): after the IASTM part and the adjuncts
    before it, in record order, each ``minutes`` long (docs/clinical.md#iastm-time)."""
    start, end = iastm_slot(ctx)
    if start is None or end is None:
        return None, None
    for adjunct in ctx.record.adjunct_therapies[: index + 1]:
        start, end = end, plus_minutes(end, adjunct.minutes)
    return start, end


def performers(ctx: MappingContext) -> list[Json]:
    """The PT on behalf of the clinic."""
    return [
        {"actor": ctx.reference(PRACTITIONER), "onBehalfOf": ctx.reference(ORGANIZATION)}
    ]


def reasons(ctx: MappingContext) -> list[Json]:
    """reasonReference -> every emitted Condition, whatever the status (docs/decisions.md#d11)."""
    return [ctx.reference(condition_role(c.condition_id)) for c in ctx.conditions]


def is_expected_finding(effect: AdverseEffect) -> bool:
    """An expected mild effect is a finding (an Observation, mapping/effect.py); anything
    unexpected (or not said to be expected) or at least moderate is a complication
    (docs/clinical.md#expected-effects)."""
    return effect.expected is True and effect.severity == "mild"


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
