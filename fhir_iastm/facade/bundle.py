"""Stored resources → what the facade answers: resources with ``meta``, searchset and history
Bundles with absolute, URL-encoded links.

``base`` is always our absolute FHIR base URL (``IASTM_PUBLIC_BASE_URL`` or the request's), so
every ``fullUrl`` and link is absolute and correct behind a path prefix.

:func:`searchset_json` writes the searchset as compact JSON text, byte for byte what encoding
:func:`searchset` gives, but splicing each stored body's text (``StoredResource.text``) instead
of encoding the decoded body again: the bodies are most of a searchset's bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from fhir_iastm.facade.cursor import encode_cursor
from fhir_iastm.facade.dates import instant
from fhir_iastm.facade.parse import Parsed
from fhir_iastm.facade.summary import subset, subsets
from fhir_iastm.storage.fhir_types import SearchResult, StoredResource, compact_json

#: the elements :func:`with_meta` sets first, in this order
_OWN = ("resourceType", "id", "meta")
#: a type or logical id that JSON writes as it is (no escapes)
_PLAIN = re.compile(r"[A-Za-z0-9\-.]+")


def _meta(stored: StoredResource, meta: Any = None) -> dict[str, Any]:
    """The body's ``meta`` (or ``meta`` when given) with the version's id and time."""
    if meta is None:
        meta = stored.body.get("meta")
    return {**(meta or {}), "versionId": str(stored.version),
            "lastUpdated": instant(stored.last_updated)}


def with_meta(stored: StoredResource) -> dict[str, Any]:
    """The stored body with ``id``, ``meta.versionId`` and ``meta.lastUpdated`` set."""
    rest = {k: v for k, v in stored.body.items() if k not in _OWN}
    return {"resourceType": stored.resource_type, "id": stored.resource_id,
            "meta": _meta(stored), **rest}


def _rest_text(stored: StoredResource) -> str | None:
    """The text of :func:`with_meta`'s ``rest`` (the members but ``resourceType``, ``id`` and
    ``meta``, in order) cut from the stored text, or None when it cannot be: no text, own
    elements amid the others, or a text not laid out by ``compact_json`` (the stored bodies are
    written by it; a text with a space after its first ``:`` is another writer's)."""
    text, keys = stored.text, list(stored.body)
    if text is None or not keys or keys[0] != "resourceType":
        return None
    lead = 1
    while lead < len(keys) and keys[lead] in _OWN:
        lead += 1
    end = len(keys)
    while end > lead and keys[end - 1] in _OWN:
        end -= 1
    if any(k in _OWN for k in keys[lead:end]):
        return None
    if end == lead:
        return ""
    prefix = compact_json({k: stored.body[k] for k in keys[:lead]})[:-1] + ","
    trail = {k: stored.body[k] for k in keys[end:]}
    suffix = "," + compact_json(trail)[1:] if trail else "}"
    if not (text.startswith(prefix) and text.endswith(suffix)
            and len(text) > len(prefix) + len(suffix)):
        return None
    return text[len(prefix):-len(suffix)]


_DECODER = json.JSONDecoder()


def _text_only(stored: StoredResource) -> tuple[Any, str] | None:
    """(the body's ``meta``, :func:`_rest_text`) read from the stored text alone, or None.

    For the layout the store writes: ``{"resourceType":"<type>","meta":{…},…,"id":"<id>"}``.
    The text's start fixes its first two members, its end its last one (a string value of
    letters, digits, ``-`` and ``.`` before the closing brace, preceded by ``,"id":``, is the
    top-level ``id``: no quote in it can be escaped); keys are unique, so no other own element
    sits amid the rest. Only ``meta`` is decoded."""
    text = stored.text
    if text is None:
        return None
    lead = f'{{"resourceType":"{stored.resource_type}","meta":'
    tail = f',"id":"{stored.resource_id}"}}'
    if not (text.startswith(lead) and text.endswith(tail) and _PLAIN.fullmatch(
            stored.resource_type) and _PLAIN.fullmatch(stored.resource_id)):
        return None
    try:
        meta, end = _DECODER.raw_decode(text, len(lead))
    except ValueError:
        return None
    stop = len(text) - len(tail)
    if not isinstance(meta, dict) or end > stop or text[end] != ",":
        return None
    return meta, text[end + 1:stop]


def resource_json(stored: StoredResource) -> str:
    """``compact_json(with_meta(stored))``, from the stored text when it has one."""
    found = _text_only(stored)
    meta, rest = found if found is not None else (None, _rest_text(stored))
    if rest is None:
        return compact_json(with_meta(stored))
    head = compact_json({"resourceType": stored.resource_type, "id": stored.resource_id,
                         "meta": _meta(stored, meta)})
    return f"{head[:-1]},{rest}}}" if rest else head


def resource_url(base: str, stored: StoredResource) -> str:
    """``[base]/Type/id``."""
    return f"{base}/{stored.resource_type}/{stored.resource_id}"


def _link(base: str, rtype: str, args: list[tuple[str, str]]) -> str:
    query = urlencode(args)
    return f"{base}/{rtype}" + (f"?{query}" if query else "")


def _searchset_head(base: str, parsed: Parsed, result: SearchResult,
                    args: list[tuple[str, str]]) -> dict[str, Any]:
    """The searchset Bundle without its entries."""
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
    return bundle


def searchset(base: str, parsed: Parsed, result: SearchResult,
              args: list[tuple[str, str]], outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The searchset Bundle of one page (``args``: the request's parameters, for the links)."""
    bundle = _searchset_head(base, parsed, result, args)
    entries = [_entry(base, r, "match", parsed) for r in result.matches]
    entries += [_entry(base, r, "include", parsed) for r in result.included]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def searchset_json(base: str, parsed: Parsed, result: SearchResult,
                   args: list[tuple[str, str]], outcome: dict[str, Any] | None) -> str:
    """``compact_json(searchset(...))``, the stored bodies' text spliced in."""
    if subsets(parsed.summary, parsed.elements):
        return compact_json(searchset(base, parsed, result, args, outcome))
    quoted = compact_json(base)[:-1]  # the base as a JSON string, its closing quote left off
    entries = [_entry_json(base, quoted, r, '"match"') for r in result.matches]
    entries += [_entry_json(base, quoted, r, '"include"') for r in result.included]
    if outcome is not None:
        entries.append(compact_json({"resource": outcome, "search": {"mode": "outcome"}}))
    head = compact_json(_searchset_head(base, parsed, result, args))
    return f'{head[:-1]},"entry":[{",".join(entries)}]}}' if entries else head


def full_url_json(base: str, quoted_base: str, stored: StoredResource) -> str:
    """``compact_json(resource_url(base, stored))``; ``quoted_base`` is ``compact_json(base)``
    without its closing quote. JSON escapes a string character by character, and a plain type
    and id (letters, digits, ``-``, ``.``) need none: they are appended as they are."""
    rtype, rid = stored.resource_type, stored.resource_id
    if _PLAIN.fullmatch(rtype) and _PLAIN.fullmatch(rid):
        return f'{quoted_base}/{rtype}/{rid}"'
    return compact_json(resource_url(base, stored))


def _entry_json(base: str, quoted_base: str, stored: StoredResource, mode_json: str) -> str:
    return (f'{{"fullUrl":{full_url_json(base, quoted_base, stored)},'
            f'"resource":{resource_json(stored)},"search":{{"mode":{mode_json}}}}}')


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


__all__ = ["full_url_json", "history", "resource_json", "resource_url", "searchset",
           "searchset_json", "with_meta"]
