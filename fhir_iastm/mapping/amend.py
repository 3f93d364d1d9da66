"""Which Observations a later record version amends (R4 ``Observation.status``).

R4 observation-status ``amended``: "the
Observation has been updated subsequent to being released". A measurement whose value in this
record version differs from its value in an earlier version of the same session is sent as
``amended`` (and stays so while any earlier version differs); an unchanged one stays ``final``.
The earlier versions come from the caller (the store keeps every version); ``fhir-iastm map``
has none and always writes ``final``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fhir_iastm.mapping.datatypes import Json
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord

_VALUE_ELEMENTS = ("valueQuantity", "component")


def observation_values(bundle: Json) -> dict[str, str]:
    """Business identifier value -> canonical Json of the value of each Observation."""
    out = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Observation":
            continue
        value = {k: resource.get(k) for k in _VALUE_ELEMENTS if k in resource}
        for identifier in resource.get("identifier") or []:
            out[str(identifier.get("value"))] = json.dumps(value, sort_keys=True)
    return out


def amended_identifiers(
    record: SessionRecord,
    earlier: Iterable[SessionRecord],
    settings: MappingSettings | None = None,
) -> frozenset[str]:
    """Identifier values of the Observations whose value an earlier version had otherwise."""
    from fhir_iastm.mapping.bundle import to_fhir  # the mapper imports this module's users

    now = observation_values(to_fhir(record, settings))
    changed: set[str] = set()
    for old in earlier:
        if old.session_id != record.session_id or old.record_version >= record.record_version:
            continue
        before = observation_values(to_fhir(old, settings))
        changed |= {key for key, value in now.items() if key in before and before[key] != value}
    return frozenset(changed)


__all__ = ["amended_identifiers", "observation_values"]
