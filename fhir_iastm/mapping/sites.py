"""A treated body site as a CodeableConcept (docs/mapping.md#procedure): shared by the IASTM
Procedure, the Conditions linked to a site (docs/clinical.md#condition-site) and the findings."""

from __future__ import annotations

from fhir_iastm.mapping.context import MappingContext
from fhir_iastm.mapping.datatypes import Json, codeable, ext, extension, extensions
from fhir_iastm.mapping.ids import MCODE_LATERALITY, MCODE_LOCATION
from fhir_iastm.records.model import TreatmentSite


def laterality_extension(ctx: MappingContext, laterality: str) -> Json:
    """The mCODE laterality-qualifier extension (docs/decisions.md#d2) for left / right /
    bilateral."""
    value = codeable([ctx.codes["laterality"].coding(laterality)])
    return ext(MCODE_LATERALITY, "CodeableConcept", value)


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


__all__ = ["body_site", "laterality_extension"]
