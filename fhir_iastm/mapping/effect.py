"""Expected mild treatment effects as findings (docs/clinical.md#expected-effects) and back.

Mild bruising, petechiae and soreness the clinician recorded
as expected are the usual response to IASTM, not complications: each becomes an Observation
(category exam, the SNOMED CT finding, its severity as the value, the treated body site, part of
the IASTM Procedure). ``Procedure.complication`` keeps only effects that are unexpected (or not
said to be expected) or at least moderate.
"""

from __future__ import annotations

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.codes import reverse_table
from fhir_iastm.mapping.context import MappingContext
from fhir_iastm.mapping.datatypes import Json, code_in, codeable, prune
from fhir_iastm.mapping.observation import observation_base
from fhir_iastm.mapping.procedure import body_site, is_expected_finding
from fhir_iastm.mapping.procedure_reverse import site_of
from fhir_iastm.records.model import AdverseEffect, SessionRecord

SNOMED = "http://snomed.info/sct"


def effect_role(record: SessionRecord, effect: AdverseEffect) -> str:
    """``obs/effect/{type}`` plus ``/{site}-{laterality}`` when the effect names its site."""
    if effect.site_index is None:
        return f"obs/effect/{effect.type}"
    site = record.treatment_sites[effect.site_index]
    return f"obs/effect/{effect.type}/{site.site}-{site.laterality}"


def to_effect(ctx: MappingContext, effect: AdverseEffect) -> Json:
    """The finding Observation of one expected mild effect."""
    codes = ctx.codes
    finding = codes["adverse_effect"].coding(effect.type)
    severity = codes["adverse_severity"].coding(effect.severity)
    resource = observation_base(
        ctx,
        "iastm-effect-observation",
        effect_role(ctx.record, effect),
        [],
        [codeable([codes.fixed("category_exam")])],
        codeable([finding], f"{finding['display']} (expected after IASTM)"),
        ctx.record.session.end,
        None,
    )
    resource["valueCodeableConcept"] = codeable([severity])
    if effect.site_index is not None:
        resource["bodySite"] = body_site(ctx, ctx.record.treatment_sites[effect.site_index])
    return prune(resource)


def to_effects(ctx: MappingContext) -> list[Json]:
    """The finding Observations of the session's expected mild effects (none when cancelled)."""
    if ctx.record.status == "cancelled":
        return []
    return [to_effect(ctx, e) for e in ctx.record.adverse_effects if is_expected_finding(e)]


def from_effect(resource: Json, base: str, where: str, sites: list[Json]) -> Json:
    """Finding Observation -> ``adverse_effects[]`` entry (expected, by construction)."""
    types, severities = (
        reverse_table(base, "adverse_effect"),
        reverse_table(base, "adverse_severity"),
    )
    kind = types.get((SNOMED, str(code_in(resource.get("code"), SNOMED))))
    severity = severities.get((SNOMED, str(code_in(resource.get("valueCodeableConcept"), SNOMED))))
    if kind is None or severity is None:
        path = f"{where}.value" if kind else f"{where}.code"
        raise MappingError(
            f"{path}: not an adverse-effect finding",
            [Issue("error", "code-invalid", path, "unknown finding or severity", "E_CODE_UNKNOWN")],
        )
    index = None
    if resource.get("bodySite"):
        key = site_of(resource["bodySite"], base, f"{where}.bodySite")
        if key not in sites:
            raise MappingError(
                f"{where}.bodySite: not a treated site",
                [Issue("error", "value", f"{where}.bodySite", "matches no bodySite", "E_REF")],
            )
        index = sites.index(key)
    return prune({"type": kind, "severity": severity, "site_index": index, "expected": True})


def is_effect_observation(resource: Json, base: str) -> bool:
    """Whether an Observation is one of ours for an adverse-effect finding."""
    code = code_in(resource.get("code"), SNOMED)
    return (SNOMED, str(code)) in reverse_table(base, "adverse_effect")


__all__ = [
    "effect_role",
    "from_effect",
    "is_effect_observation",
    "is_expected_finding",
    "to_effect",
    "to_effects",
]
