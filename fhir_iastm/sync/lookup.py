"""Batched business-identifier lookups: one OR-search per resource type and chunk
(``Type?identifier=a,b,c``, https://hl7.org/fhir/R4/search.html#combining).

A query is ``system|value`` with the value FHIR-escaped (docs/decisions.md#d16) and not
percent-encoded; the retraction search (``sync.retract``) and the dry run (``sync.dryrun``)
share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fhir_iastm.mapping import ids
from fhir_iastm.sync.ports import FhirPort, Json

#: identifiers per OR-search (keeps the URL short on every server)
CHUNK = 20


def queries_of(resource: Mapping[str, Any]) -> set[str]:
    """Every ``system|escaped-value`` a resource answers to."""
    return {
        f"{i['system']}|{ids.fhir_escape(i['value'])}"
        for i in resource.get("identifier") or []
        if isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
    }


def entry_query(entry: Mapping[str, Any]) -> str | None:
    """The identifier a conditional entry is keyed on (``PUT Type?identifier=`` or
    ``ifNoneExist``), decoded to ``system|escaped-value``; None for other entries."""
    request = entry.get("request") or {}
    url = str(request.get("url") or "")
    if request.get("method") == "PUT" and "?" in url:
        condition = url.split("?", 1)[1]
    elif request.get("method") == "POST" and request.get("ifNoneExist"):
        condition = str(request["ifNoneExist"])
    else:
        return None
    pairs = [v for k, v in parse_qsl(condition, keep_blank_values=True) if k == "identifier"]
    return pairs[0] if len(pairs) == 1 else None


def search_identifiers(client: FhirPort, resource_type: str, queries: Iterable[str]) -> list[Json]:
    """The ``resource_type`` resources answering to any of ``queries`` (each once)."""
    wanted = sorted(set(queries))
    found: dict[str, Json] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        params = [("identifier", ",".join(chunk)), ("_count", "100")]
        for resource in client.search_all(resource_type, params):
            if resource.get("resourceType") == resource_type and queries_of(resource) & set(chunk):
                found.setdefault(str(resource.get("id")), resource)
    return list(found.values())


def matches_by_query(
    client: FhirPort, wanted: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], list[Json]]:
    """(type, query) -> the server resources answering to it, for ``{type: [query, ...]}``."""
    out: dict[tuple[str, str], list[Json]] = {}
    for rtype, queries in sorted(wanted.items()):
        for resource in search_identifiers(client, rtype, queries):
            for query in queries_of(resource) & set(queries):
                out.setdefault((rtype, query), []).append(resource)
    return out


__all__ = ["CHUNK", "entry_query", "matches_by_query", "queries_of", "search_identifiers"]
