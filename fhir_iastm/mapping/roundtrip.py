"""The canonical form in which record -> FHIR -> record must be lossless
(docs/decisions.md#round-trip).

Applies exactly these exclusions: ``billing`` (unless mapped with include_cpt), ``last_modified``;
for entered-in-error sessions the conditions' pre-retraction statuses; empty arrays; ``is_primary``
false = absent; arrays compared as sets keyed by their unique keys (``site_index`` is replaced by
the site's (site, laterality) key so sites can be sorted). A ``pain`` object without any score
counts as empty (no Observation can carry a bare scale); ``screening.findings`` is a set.
Everything else must survive unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_iastm.records.model import SessionRecord, to_dict
from fhir_iastm.records.vocab import SCREENING_FINDINGS

#: Array -> the fields of its unique key (docs/decisions.md#round-trip).
_KEYS = {
    "conditions": ("condition_id",),
    "treatment_sites": ("site", "laterality"),
    "rom": ("joint", "motion", "laterality", "mode", "timing"),
    "outcome_measures": ("instrument",),
    "adjunct_therapies": ("type",),
    "instruments": ("code",),
    "adverse_effects": ("type", "severity", "site", "expected"),
}


def _key(item: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(repr(item.get(f)) for f in fields)


def _sort_key(fields: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    def key(item: dict[str, Any]) -> tuple[str, ...]:
        return _key(item, fields)

    return key


def canonical_for_roundtrip(record: SessionRecord, *, billing: bool = False) -> dict[str, Any]:
    """The record as a dict with the round-trip exclusions applied (compare two with ``==``).

    ``billing``: keep ``billing`` (it round-trips when mapped with include_cpt, the only setting
    that may send CPT codes, docs/codes.md#cpt)."""
    data: dict[str, Any] = to_dict(record)
    if not billing:
        data.pop("billing", None)
    data.pop("last_modified", None)
    if "pain" in data and not ({"pre", "post"} & set(data["pain"])):
        del data["pain"]
    sites = data.get("treatment_sites", [])
    for effect in [*data.get("adverse_effects", []), *data.get("conditions", [])]:
        index = effect.pop("site_index", None)
        if index is not None:
            effect["site"] = (sites[index]["site"], sites[index]["laterality"])
    for condition in data.get("conditions", []):
        if condition.get("is_primary") is False:
            del condition["is_primary"]
        if data["status"] == "entered-in-error":
            condition.pop("clinical_status", None)
            condition.pop("verification_status", None)
    if "findings" in data.get("screening", {}):  # a set: read back in the screening list's order
        data["screening"]["findings"].sort(key=SCREENING_FINDINGS.index)
    for name, fields in _KEYS.items():
        if name in data:
            data[name] = sorted(data[name], key=_sort_key(fields))
    return data


__all__ = ["canonical_for_roundtrip"]
