"""The pre-treatment contraindication / precaution screening and consent
(docs/clinical.md#screening) as one Observation, and back.

One Observation (profile ``iastm-screening-observation``, category exam, code
``iastm-screening#contraindication-screen``, ``effectiveDateTime`` = ``screening.performed_at``,
part of the IASTM Procedure) with one component per item: every finding of the screening list
(``valueBoolean`` true when found, false when screened and absent), anticoagulant therapy, skin
intact, consent obtained, and the override reason (``valueString``) when given.
"""

from __future__ import annotations

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.codes import reverse_table, tables
from fhir_iastm.mapping.context import MappingContext
from fhir_iastm.mapping.datatypes import Json, code_in, codeable, prune
from fhir_iastm.mapping.observation import observation_base
from fhir_iastm.records.vocab import SCREENING_FINDINGS

ROLE = "obs/screening"
PANEL = "contraindication-screen"
#: record field -> screening item code (the yes/no items besides the findings)
_ITEMS = {
    "anticoagulant_therapy": "anticoagulant-therapy",
    "skin_intact": "skin-intact",
    "consent_obtained": "consent-obtained",
}
_OVERRIDE = "override-reason"


def to_screening(ctx: MappingContext) -> list[Json]:
    """The screening Observation (none without ``screening``). A cancelled session's screening
    still happened: its status is ``final``."""
    s = ctx.record.screening
    if s is None:
        return []
    table = ctx.codes["screening"]
    components = [_component(table.coding(f), f in s.findings) for f in SCREENING_FINDINGS]
    components += [_component(table.coding(code), getattr(s, f)) for f, code in _ITEMS.items()]
    if s.override_reason is not None:
        components.append(
            {"code": codeable([table.coding(_OVERRIDE)]), "valueString": s.override_reason}
        )
    panel = table.coding(PANEL)
    resource = observation_base(
        ctx,
        "iastm-screening-observation",
        ROLE,
        [],
        [codeable([ctx.codes.fixed("category_exam")])],
        codeable([panel], panel["display"]),
        s.performed_at,
        None,
    )
    resource["status"] = resource["status"] or "final"
    resource["component"] = components
    return [prune(resource)]


def _component(coding: Json, value: bool) -> Json:
    return {"code": codeable([coding]), "valueBoolean": value}


def is_screening_observation(resource: Json, base: str) -> bool:
    """Whether an Observation is our screening panel."""
    system = tables(base)["screening"][PANEL][0]["system"]
    return code_in(resource.get("code"), system) == PANEL


def from_screening(resource: Json, base: str, where: str) -> Json:
    """Screening Observation -> the record's ``screening`` object."""
    lookup = reverse_table(base, "screening")
    system = tables(base)["screening"][PANEL][0]["system"]
    values: dict[str, object] = {}
    for i, component in enumerate(resource.get("component") or []):
        item = lookup.get((system, str(code_in(component.get("code"), system))))
        value = component.get("valueString", component.get("valueBoolean"))
        if item is None or item == PANEL or item in values or value is None:
            path = f"{where}.component[{i}]"
            words = "unknown or repeated item"
            issue = Issue("error", "code-invalid", path, words, "E_CODE_UNKNOWN")
            raise MappingError(f"{path}: not a screening item, or repeated", [issue])
        values[item] = value
    return prune(
        {
            "performed_at": resource.get("effectiveDateTime"),
            **{field: values.get(code) for field, code in _ITEMS.items()},
            "findings": [f for f in SCREENING_FINDINGS if values.get(f) is True],
            "override_reason": values.get(_OVERRIDE),
        }
    )


__all__ = ["from_screening", "is_screening_observation", "to_screening"]
