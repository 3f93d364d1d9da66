"""Stored resources → what the facade answers: resources with ``meta``, searchset and history
Bundles with absolute, URL-encoded links.

``base`` is always our absolute FHIR base URL (``IASTM_PUBLIC_BASE_URL`` or the request's), so
every ``fullUrl`` and link is absolute and correct behind a path prefix.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fhir_iastm.facade.cursor import encode_cursor
from fhir_iastm.facade.dates import instant
from fhir_iastm.facade.parse import Parsed
from fhir_iastm.facade.summary import subset
from fhir_iastm.storage.fhir_types import SearchResult, StoredResource


def with_meta(stored: StoredResource) -> dict[str, Any]:
    """The stored body with ``id``, ``meta.versionId`` and ``meta.lastUpdated`` set."""
    body = stored.body
    meta = {**(body.get("meta") or {}), "versionId": str(stored.version),
            "lastUpdated": instant(stored.last_updated)}
    rest = {k: v for k, v in body.items() if k not in ("resourceType", "id", "meta")}
    return {"resourceType": stored.resource_type, "id": stored.resource_id, "meta": meta, **rest}


def resource_url(base: str, stored: StoredResource) -> str:
    """``[base]/Type/id``."""
    return f"{base}/{stored.resource_type}/{stored.resource_id}"


def _link(base: str, rtype: str, args: list[tuple[str, str]]) -> str:
    query = urlencode(args)
    return f"{base}/{rtype}" + (f"?{query}" if query else "")


def searchset(base: str, parsed: Parsed, result: SearchResult,
              args: list[tuple[str, str]], outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The searchset Bundle of one page (``args``: the request's parameters, for the links)."""
    query = parsed.query
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    kept = [(k, v) for k, v in args if k != "_cursor"]
    bundle["link"] = [{"relation": "self", "url": _link(base, query.resource_type, args)}]
    if result.next_after is not None:
        cursor = encode_cursor(query.sort, result.next_after)
        bundle["link"].append({"relation": "next", "url": _link(
            base, query.resource_type, [*kept, ("_cursor", cursor)])})
    if query.after is not None:
        bundle["link"].append({"relation": "first",
                               "url": _link(base, query.resource_type, kept)})
    entries = [_entry(base, r, "match", parsed) for r in result.matches]
    entries += [_entry(base, r, "include", parsed) for r in result.included]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(base: str, stored: StoredResource, mode: str, parsed: Parsed) -> dict[str, Any]:
    resource = subset(with_meta(stored), parsed.summary, parsed.elements)
    return {"fullUrl": resource_url(base, stored), "resource": resource,
            "search": {"mode": mode}}


def history(base: str, rtype: str, rid: str, versions: list[StoredResource],
            total: int | None = None) -> dict[str, Any]:
    """The history Bundle of one resource, newest version first (gone versions as DELETE)."""
    entries = []
    for stored in versions:
        url = resource_url(base, stored)
        entry: dict[str, Any] = {"fullUrl": url}
        if stored.gone:
            entry["request"] = {"method": "DELETE", "url": f"{rtype}/{rid}"}
        else:
            entry["resource"] = with_meta(stored)
            entry["request"] = {"method": "PUT" if stored.version > 1 else "POST",
                                "url": f"{rtype}/{rid}" if stored.version > 1 else rtype}
        entry["response"] = {"status": "410 Gone" if stored.gone else
                             ("200 OK" if stored.version > 1 else "201 Created"),
                             "etag": f'W/"{stored.version}"',
                             "lastModified": instant(stored.last_updated)}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history",
                              "link": [{"relation": "self",
                                        "url": f"{base}/{rtype}/{rid}/_history"}]}
    if total is not None:
        bundle["total"] = total
    if entries:
        bundle["entry"] = entries
    return bundle


__all__ = ["history", "resource_url", "searchset", "with_meta"]
