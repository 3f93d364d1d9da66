"""A mapped transaction Bundle as a server holds it: the resources the FHIR facade serves.

The facade serves what ``mapping.to_fhir`` builds, but as a
server would hold it: every resource gets a stable logical ``id`` derived from its business key
(the conditional ``request.url`` / ``ifNoneExist`` of its entry), and ``urn:uuid:`` references are
rewritten to literal ``Type/id`` references. The same Patient (same clinic and MRN) therefore has
the same id in every session.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from fhir_iastm.mapping.ids import uuid5_text

_NAMESPACE = uuid.UUID("5b0c8f0e-2a4e-4c55-9a9e-6f1b8d3f7a11")


def business_key(entry: dict[str, Any]) -> str:
    """The entry's business key: its conditional query, else its fullUrl."""
    request = entry.get("request") or {}
    resource_type = entry["resource"]["resourceType"]
    if request.get("ifNoneExist"):
        return f"{resource_type}?{request['ifNoneExist']}"
    url = request.get("url") or ""
    if "?" in url:
        return url
    return entry.get("fullUrl") or f"{resource_type}/{url}"


def logical_id(key: str) -> str:
    """Stable logical id for a business key (lower-case RFC 4122 uuid5)."""
    return uuid5_text(_NAMESPACE, key)


#: Values with nothing inside to rewrite: not visited (most of a resource's nodes).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _rewrite(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in refs:
            node["reference"] = refs[ref]
        for value in node.values():
            if value.__class__ not in _LEAVES:
                _rewrite(value, refs)
    elif isinstance(node, list):
        for value in node:
            if value.__class__ not in _LEAVES:
                _rewrite(value, refs)


def _ids_and_refs(entries: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Each entry's logical id, and its ``fullUrl`` -> ``Type/id`` reference map."""
    refs: dict[str, str] = {}
    ids: list[str] = []
    for entry in entries:
        rid = logical_id(business_key(entry))
        ids.append(rid)
        if entry.get("fullUrl"):
            refs[entry["fullUrl"]] = f"{entry['resource']['resourceType']}/{rid}"
    return ids, refs


def stored_resources(bundle: dict[str, Any], *, copy_: bool = True,
                     references: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Resources of a transaction Bundle with logical ids and literal references (a deep copy;
    ``copy_=False`` rewrites the Bundle's own resources instead, for a Bundle nobody else holds).
    ``references`` (only with ``copy_=False``): every Reference the resources carry, as
    ``mapping.mapped`` lists them; then only those are rewritten, the resources are not walked
    (docs/performance.md#prepare)."""
    entries = bundle.get("entry") or []
    ids, refs = _ids_and_refs(entries)
    listed = None if copy_ else references
    out = []
    for entry, rid in zip(entries, ids, strict=True):
        resource = copy.deepcopy(entry["resource"]) if copy_ else entry["resource"]
        resource["id"] = rid
        if listed is None:
            _rewrite(resource, refs)
        out.append(resource)
    for node in listed or ():
        ref = node["reference"]
        if ref in refs:
            node["reference"] = refs[ref]
    return out


def stored_last(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle's last resource as :func:`stored_resources` gives it, the others left alone
    (rewritten in place: for a Bundle nobody else holds)."""
    entries = bundle["entry"]
    ids, refs = _ids_and_refs(entries)
    resource: dict[str, Any] = entries[-1]["resource"]
    resource["id"] = ids[-1]
    _rewrite(resource, refs)
    return resource


__all__ = ["business_key", "logical_id", "stored_last", "stored_resources"]
