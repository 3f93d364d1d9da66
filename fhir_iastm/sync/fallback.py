"""Capability check (docs/decisions.md#d13) and the degraded write path of
docs/push.md#capabilities.

The preferred path needs ``transaction``, conditional update for the session-owned types,
conditional create for the shared types and ``updateCreate`` for Provenance. Where the
CapabilityStatement does not declare one of these, the affected entries are resolved by the client:
``GET Type?identifier=system|value`` -> one match: ``PUT Type/{id}`` (session-owned) or a literal
reference to it (shared: never overwritten, docs/decisions.md#d5); no match: plain ``POST``; several
matches:
``E_AMBIGUOUS_MATCH``. The result is still ONE transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from fhir_iastm.errors import AmbiguousMatchError, FhirServerError, ambiguous_match
from fhir_iastm.sync.bundle_ops import rewrite_references, with_entries
from fhir_iastm.sync.ports import CapabilitiesView, FhirPort, Json

SESSION_OWNED = ("Encounter", "Condition", "Procedure", "Observation")
SHARED = ("Patient", "Practitioner", "Organization")
#: Every conditional request the push may send: the receiver setting
#: ``conditional_requests = false`` (docs/targets.md#receiver-settings) marks them all missing.
ALL_CONDITIONAL = frozenset(
    {f"update:{t}" for t in SESSION_OWNED} | {f"create:{t}" for t in (*SHARED, "Device")}
)


def missing_features(caps: CapabilitiesView) -> frozenset[str]:
    """``"update:Type"`` / ``"create:Type"`` / ``"updateCreate:Provenance"`` the server lacks.

    Conditional update / create must be declared true (docs/decisions.md#d13: a silent server takes
    the
    search-first path); ``updateCreate`` counts as missing only when declared false.

    Raises ``FhirServerError`` when ``transaction`` itself is missing: every path sends one.
    """
    if not caps.supports_transaction:
        raise FhirServerError(
            "the FHIR server does not declare the 'transaction' interaction "
            "(docs/decisions.md#d13): cannot push"
        )
    missing = {f"update:{t}" for t in SESSION_OWNED if not caps.conditional_update(t)}
    missing |= {f"create:{t}" for t in SHARED if not caps.conditional_create(t)}
    if caps.update_create("Provenance") is False:  # HAPI 8.8 is silent yet creates: only False
        missing.add("updateCreate:Provenance")
    return frozenset(missing)


def _matches(client: FhirPort, resource_type: str, query: str) -> list[Json]:
    """Resources of ``resource_type`` matching a bare ``identifier=system|value`` query."""
    name, _, value = query.partition("=")
    page = client.search(resource_type, [(name, unquote(value))])
    return [
        e["resource"]
        for e in page.get("entry") or []
        if (e.get("resource") or {}).get("resourceType") == resource_type
        and (e.get("search") or {}).get("mode", "match") == "match"
    ]


def _ambiguous(resource_type: str, count: int) -> AmbiguousMatchError:
    return ambiguous_match(f"{resource_type}: the business identifier matched {count} resources")


def _resolve(client: FhirPort, entry: Json, missing: frozenset[str]) -> tuple[Json | None, str]:
    """(the entry to send or None to drop it, literal reference replacing its fullUrl or "")."""
    request = entry.get("request") or {}
    rtype = str((entry.get("resource") or {}).get("resourceType"))
    method, url = request.get("method"), str(request.get("url", ""))
    if method == "PUT" and "?" in url and f"update:{rtype}" in missing:
        found = _matches(client, rtype, url.split("?", 1)[1])
        if len(found) > 1:
            raise _ambiguous(rtype, len(found))
        if not found:
            return {**entry, "request": {"method": "POST", "url": rtype}}, ""
        resource = {**entry["resource"], "id": found[0]["id"]}
        return {
            **entry,
            "resource": resource,
            "request": {"method": "PUT", "url": f"{rtype}/{found[0]['id']}"},
        }, ""
    if method == "POST" and request.get("ifNoneExist") and f"create:{rtype}" in missing:
        found = _matches(client, rtype, str(request["ifNoneExist"]))
        if len(found) > 1:
            raise _ambiguous(rtype, len(found))
        if found:
            return None, f"{rtype}/{found[0]['id']}"
        return {**entry, "request": {"method": "POST", "url": rtype}}, ""
    if method == "PUT" and rtype == "Provenance" and "updateCreate:Provenance" in missing:
        resource = {k: v for k, v in entry["resource"].items() if k != "id"}
        return {**entry, "resource": resource, "request": {"method": "POST", "url": rtype}}, ""
    return entry, ""


def degrade(client: FhirPort, bundle: Mapping[str, Any], missing: frozenset[str]) -> Json:
    """The Bundle rewritten for a server lacking ``missing`` features (unchanged when empty)."""
    if not missing:
        return dict(bundle)
    kept: list[Json] = []
    replaced: dict[str, str] = {}
    for entry in bundle.get("entry") or []:
        new, literal = _resolve(client, entry, missing)
        if new is None:
            replaced[str(entry.get("fullUrl"))] = literal
        else:
            kept.append(new)
    for old, new_ref in replaced.items():
        kept = rewrite_references(kept, old, new_ref)
    return with_entries(bundle, kept)


__all__ = ["ALL_CONDITIONAL", "SESSION_OWNED", "SHARED", "degrade", "missing_features"]
