"""Retractions: elements a new record version dropped become ``entered-in-error``
(docs/decisions.md#d8).

Nothing is ever deleted (docs/decisions.md#d8): each dropped
resource is
read, marked ``entered-in-error`` and written back as ``PUT Type/{id}`` with ``ifMatch`` in the SAME
transaction as the new version.

* With local history (``last_pushed``): the identifiers it emitted that the new Bundle does not
  emit.
* Without (a pulled record, a fresh store): FHIR search has no identifier prefix match, so search
  ``Observation|Procedure|Condition?encounter=`` of the session's Encounter and keep what carries
  our ``iastm-session-resource`` identifier for this session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fhir_iastm.mapping import ids
from fhir_iastm.sync.bundle_ops import (
    Systems,
    is_retracted,
    is_session_procedure,
    resource_keys,
    retraction_entry,
    split_key,
)
from fhir_iastm.sync.lookup import search_identifiers
from fhir_iastm.sync.ports import FhirPort, Json, LastPushedView

#: role prefix of an ``iastm-session-resource`` value -> resource type
#: (docs/decisions.md#identifiers).
_ROLE_TYPES = (
    ("obs/", "Observation"),
    ("adjunct/", "Procedure"),
    ("condition/", "Condition"),
    ("encounter", "Encounter"),
    ("procedure", "Procedure"),
)


def type_of(identifier: str, fhir_ids: Mapping[str, str]) -> str | None:
    """Resource type of a session-owned identifier: from the ids pushed last, else from its role."""
    ref = fhir_ids.get(identifier)
    if ref and "/" in ref:
        return ref.split("/")[0]
    _, value = split_key(identifier)
    role = value.split("/", 1)[1] if "/" in value else ""
    return next((rtype for prefix, rtype in _ROLE_TYPES if role.startswith(prefix)), None)


def dropped_identifiers(
    previous: Iterable[str], emitted: Iterable[str], systems: Systems
) -> list[str]:
    """Session-owned identifiers pushed before and absent now (sorted, deterministic)."""
    prefix = systems.resource + "|"
    return sorted({k for k in previous if k.startswith(prefix)} - set(emitted))


def fetch_by_identifiers(
    client: FhirPort, identifiers: Sequence[str], fhir_ids: Mapping[str, str], systems: Systems
) -> list[Json]:
    """The server resources holding these identifiers (one OR-search per type and chunk)."""
    by_type: dict[str, list[str]] = {}
    for ident in identifiers:
        rtype = type_of(ident, fhir_ids)
        if rtype is not None:
            by_type.setdefault(rtype, []).append(ident)
    wanted = set(identifiers)
    found: list[Json] = []
    for rtype, keys in sorted(by_type.items()):
        queries = [f"{s}|{ids.fhir_escape(v)}" for s, v in map(split_key, keys)]
        found += [
            r for r in search_identifiers(client, rtype, queries)
            if wanted & set(resource_keys(r, systems))
        ]
    return found


def fetch_by_encounter(client: FhirPort, encounter_ref: str) -> list[Json]:
    """Observations, Procedures and Conditions of one Encounter (``?encounter=``)."""
    found: list[Json] = []
    for rtype in ("Observation", "Procedure", "Condition"):
        params = [("encounter", encounter_ref), ("_count", "100")]
        found += [r for r in client.search_all(rtype, params) if r.get("resourceType") == rtype]
    return found


def retraction_entries(
    candidates: Iterable[Json],
    emitted: Iterable[str],
    *,
    systems: Systems,
    base: str,
    session_id: str,
) -> list[Json]:
    """Transaction entries retracting every candidate this session owns and no longer emits."""
    keep, own = set(emitted), f"{systems.resource}|{session_id}/"
    entries: list[Json] = []
    seen: set[str] = set()
    for resource in candidates:
        keys = resource_keys(resource, systems)
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        if (
            not keys
            or not all(k.startswith(own) for k in keys)
            or keep & set(keys)
            or is_retracted(resource)
            or is_session_procedure(resource, systems)
            or ref in seen
            or not resource.get("id")
        ):
            continue
        seen.add(ref)
        entries.append(retraction_entry(resource, ids.full_url(base, session_id, f"retract/{ref}")))
    return entries


def plan_retractions(
    client: FhirPort,
    *,
    systems: Systems,
    base: str,
    session_id: str,
    emitted: Sequence[str],
    server_procedure: Mapping[str, Any] | None,
    last_pushed: LastPushedView | None,
) -> list[Json]:
    """The ``entered-in-error`` entries to add to this session's transaction (maybe none)."""
    if server_procedure is None:
        return []  # nothing of this session is on the server: nothing to retract
    if last_pushed is not None:
        dropped = dropped_identifiers(last_pushed.identifiers, emitted, systems)
        if not dropped:
            return []
        candidates = fetch_by_identifiers(client, dropped, last_pushed.fhir_ids or {}, systems)
    else:
        encounter = (server_procedure.get("encounter") or {}).get("reference")
        if not isinstance(encounter, str) or not encounter:
            return []
        candidates = fetch_by_encounter(client, encounter)
    return retraction_entries(
        candidates, emitted, systems=systems, base=base, session_id=session_id
    )


__all__ = [
    "dropped_identifiers",
    "fetch_by_encounter",
    "fetch_by_identifiers",
    "plan_retractions",
    "retraction_entries",
    "type_of",
]
