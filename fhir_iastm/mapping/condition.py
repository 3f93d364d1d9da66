"""One per-encounter Condition per ``conditions[]`` entry (docs/mapping.md#condition) and
back.

For an entered-in-error session every copy is retracted:
``verificationStatus = entered-in-error`` and no ``clinicalStatus`` (docs/decisions.md#statuses, R4
con-5).
"""

from __future__ import annotations

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.codes import condition_snomed_display, reverse_table
from fhir_iastm.mapping.context import ENCOUNTER, PATIENT, MappingContext, condition_role
from fhir_iastm.mapping.datatypes import (
    Json,
    code_in,
    codeable,
    ext_all,
    identifier,
    identifier_value,
    prune,
)
from fhir_iastm.mapping.ids import MCODE_LATERALITY
from fhir_iastm.mapping.sites import body_site, laterality_extension
from fhir_iastm.records.icd10cm import icd_title
from fhir_iastm.records.model import Condition

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


def to_condition(ctx: MappingContext, c: Condition) -> Json:
    """One encounter-diagnosis Condition (docs/mapping.md#condition)."""
    retracted = (
        ctx.record.status == "entered-in-error" or c.verification_status == "entered-in-error"
    )
    verification = "entered-in-error" if retracted else c.verification_status
    clinical = None if retracted or c.clinical_status is None else c.clinical_status
    return prune(
        {
            "resourceType": "Condition",
            "meta": ctx.meta("iastm-condition"),
            "extension": ctx.source_extensions(),
            "identifier": [
                ctx.session_identifier(condition_role(c.condition_id)),
                identifier(ctx.sid("iastm-condition"), c.condition_id),
            ],
            "clinicalStatus": codeable([ctx.codes["condition_clinical"].coding(clinical)])
            if clinical
            else None,
            "verificationStatus": codeable(
                [ctx.codes["condition_verification"].coding(verification)]
            ),
            "category": [codeable([ctx.codes.fixed("condition_category")])],
            "code": codeable(_code_codings(c), c.text),
            "bodySite": _body_sites(ctx, c),
            "subject": ctx.reference(PATIENT),
            "encounter": ctx.reference(ENCOUNTER),
            "onsetDateTime": c.onset_date,
            "recordedDate": ctx.record.recorded_at,
        }
    )


def _code_codings(c: Condition) -> list[Json]:
    # the display is the code's title in the pinned FY tabular (public domain, CMS)
    codings: list[Json] = [
        prune({"system": ICD10CM, "code": c.icd10cm, "display": icd_title(c.icd10cm)})
    ]
    if c.snomed:
        codings.append(
            prune(
                {"system": SNOMED, "code": c.snomed, "display": condition_snomed_display(c.snomed)}
            )
        )
    return codings


def _body_sites(ctx: MappingContext, c: Condition) -> list[Json]:
    """The treated site the condition is linked to (schema 2.0, docs/clinical.md#condition-site),
    else only its side; none when not-applicable."""
    if c.site_index is not None:
        return [body_site(ctx, ctx.record.treatment_sites[c.site_index])]
    return [_laterality_site(ctx, c.laterality)] if c.laterality != "not-applicable" else []


def _laterality_site(ctx: MappingContext, laterality: str) -> Json:
    """bodySite carrying only the side (the site itself is on the Procedure,
    docs/mapping.md#condition)."""
    return codeable(text=laterality, extension=[laterality_extension(ctx, laterality)])


# ---------------------------------------------------------------- reverse


def from_condition(resource: Json, base: str, where: str, primary: bool) -> Json:
    """Condition -> one ``conditions[]`` entry; laterality only from the mCODE extension."""
    code = resource.get("code") or {}
    return prune(
        {
            "condition_id": identifier_value(resource, f"{base}/sid/iastm-condition"),
            "icd10cm": code_in(code, ICD10CM),
            "snomed": code_in(code, SNOMED),
            "text": code.get("text"),
            "laterality": condition_laterality(resource, base, where),
            "onset_date": resource.get("onsetDateTime"),
            "clinical_status": code_in(
                resource.get("clinicalStatus"),
                "http://terminology.hl7.org/CodeSystem/condition-clinical",
            ),
            "verification_status": code_in(
                resource.get("verificationStatus"),
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            ),
            "is_primary": True if primary else None,
        }
    )


def condition_laterality(resource: Json, base: str, where: str) -> str:
    """``not-applicable`` without a bodySite; else exactly one known laterality extension."""
    sites = resource.get("bodySite") or []
    if not sites:
        return "not-applicable"
    return laterality_of(sites[0], base, f"{where}.bodySite[0]")


def laterality_of(site: Json, base: str, where: str) -> str:
    """The record laterality of a bodySite; never guessed (docs/decisions.md#round-trip)."""
    found = ext_all(site, MCODE_LATERALITY)
    if len(found) != 1:
        raise MappingError(
            f"{where}: expected exactly one mCODE laterality extension, found {len(found)}",
            [
                Issue(
                    "error",
                    "required",
                    where,
                    "unknown laterality: the bodySite carries "
                    f"{len(found)} mCODE laterality-qualifier extensions (exactly 1 needed)",
                    "E_REQUIRED",
                )
            ],
        )
    concept = found[0].get("valueCodeableConcept") or {}
    table = reverse_table(base, "laterality")
    for coding in concept.get("coding", ()):
        value = table.get((coding.get("system"), coding.get("code")))
        if value:
            return value
    raise MappingError(
        f"{where}: unknown laterality",
        [
            Issue(
                "error",
                "code-invalid",
                f"{where}.extension('{MCODE_LATERALITY}')",
                "unknown laterality code",
                "E_CODE_UNKNOWN",
            )
        ],
    )


__all__ = [
    "condition_laterality",
    "from_condition",
    "laterality_extension",
    "laterality_of",
    "to_condition",
]
