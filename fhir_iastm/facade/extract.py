"""The search index of a resource, read from the parameter table (``facade.params``).

Each parameter's R4 expression is evaluated on the resource with a small path walker that knows
exactly the forms the table uses: ``Type.a.b``, a choice element by its base name
(``Procedure.performed`` → ``performedPeriod`` / ``performedDateTime``), unions (``a | b``) and
``.where(resolve() is Type)`` on references. A test proves every expression of the table is one
of these forms. What each datatype contributes follows HAPI FHIR's JPA indexer:

* token — Identifier (system, value); CodeableConcept / Coding (system, code); ``code`` (its
  required binding's system from ``params.CODE_SYSTEMS``, code); boolean;
* string — text, and every part of a HumanName (family, given, prefix, suffix, text); stored
  normalized (accents removed, upper case; for the default starts-with and ``:contains``) and
  exact (``:exact``);
* date — date, dateTime, instant and Period as inclusive UTC ranges (``facade.dates``);
* reference — literal ``Type/id`` references.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from operator import itemgetter
from typing import Any

from fhir_iastm.facade.dates import date_bounds, period_bounds
from fhir_iastm.facade.params import CODE_SYSTEMS, PARAMS, SearchParam
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.jsonfast import dumps_pair, dumps_sorted, faithful, memo_key
from fhir_iastm.mapping import MappingSettings, mapped
from fhir_iastm.records.model import SessionRecord
from fhir_iastm.storage.fhir_types import JsonText, ResourceSet, ResourceWrite

SHARED_TYPES = frozenset({"Patient", "Practitioner", "Organization"})
#: Longest indexed string or token part (longer values are cut; HAPI cuts at 200 as well).
MAX_TEXT = 200
_WHERE = re.compile(r"(?P<path>[\w.]+)\.where\(resolve\(\) is (?P<type>\w+)\)")
_PATH = re.compile(r"[A-Z]\w*(\.\w+)+")


def branches(param: SearchParam) -> list[tuple[list[str], str, str | None]]:
    """The expression's branches as (element path after the type, dotted text, target filter)."""
    out = []
    for text in param.expression.split(" | "):
        match = _WHERE.fullmatch(text)
        path, only = (match["path"], match["type"]) if match else (text, None)
        if not _PATH.fullmatch(path):
            raise ValueError(f"unsupported search expression '{text}' ({param.name})")
        out.append((path.split(".")[1:], path, only))
    return out


def _children(node: Any, name: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    if name in node:
        value = node[name]
        return value if isinstance(value, list) else [value]
    # a choice element: name + an upper-case type suffix
    size = len(name)
    out: list[Any] = []
    for key, value in node.items():
        if len(key) > size and key.startswith(name) and key[size].isupper():
            out += value if isinstance(value, list) else [value]
    return out


def evaluate(resource: dict[str, Any], steps: list[str]) -> list[Any]:
    """The values at an element path (lists flattened; the list may be one of the resource's
    own: read it, do not change it)."""
    nodes: list[Any] = [resource]
    for step in steps:
        if len(nodes) == 1:
            nodes = _children(nodes[0], step)
        else:
            nodes = [child for node in nodes for child in _children(node, step)]
    return nodes


def normalize(text: str) -> str:
    """Search form of a string: accents removed, upper case, cut to ``MAX_TEXT``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()[:MAX_TEXT]


def _add_tokens(out: list[tuple[str, str, str]], name: str, node: Any, path: str) -> None:
    """The token rows of one value: (name, system, code), each cut to ``MAX_TEXT``."""
    if isinstance(node, dict):  # most tokens: a CodeableConcept, Coding or Identifier
        if "coding" in node:
            for coding in node["coding"]:
                _add_tokens(out, name, coding, path)
        elif "value" in node or "code" in node:
            code = node.get("value", node.get("code"))
            if isinstance(code, str):
                out.append((name, (node.get("system") or "")[:MAX_TEXT], code[:MAX_TEXT]))
    elif isinstance(node, bool):
        out.append((name, "", "true" if node else "false"))
    elif isinstance(node, str):
        out.append((name, CODE_SYSTEMS.get(path, "")[:MAX_TEXT], node[:MAX_TEXT]))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):  # HumanName
        for key in ("family", "text"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("given", "prefix", "suffix"):
            yield from (v for v in node.get(key) or () if isinstance(v, str))


def _dates(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield date_bounds(node)
    elif isinstance(node, dict) and ("start" in node or "end" in node):
        yield period_bounds(node.get("start"), node.get("end"))


def _add_refs(out: list[tuple[str, str, str]], name: str, node: Any, only: str | None) -> None:
    """The reference row of a literal ``Type/id`` reference (of type ``only`` when given)."""
    ref = node.get("reference") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.count("/") == 1:
        rtype, rid = ref.split("/")
        if only is None or rtype == only:
            out.append((name, rtype, rid))


@cache
def _compiled(rtype: str) -> list[tuple[str, str, list[str], str, str | None]]:
    """The parameters of a type, (name, type, steps, dotted path, target filter) of each branch
    of their expressions (parsed once)."""
    return [(p.name, p.type, steps, path, only) for p in PARAMS if p.resource == rtype
            for steps, path, only in branches(p)]


def index_resource(resource: dict[str, Any]) -> ResourceWrite:
    """A resource (with its logical id) and its index rows, as the store writes them (the body as
    its ``JsonText``, encoded with the content hash's text: ``jsonfast.dumps_pair``). A shared
    resource is written once per content (:func:`_shared_write`)."""
    rtype = resource["resourceType"]
    if rtype in SHARED_TYPES:
        return _shared_write(resource, rtype)
    canonical, text = dumps_pair(resource)
    return ResourceWrite(rtype, resource["id"], JsonText(text),
                         hashlib.sha256(canonical).hexdigest(), False,  # content_hash(resource)
                         *_index_rows(resource, rtype))


def _shared_write(resource: dict[str, Any], rtype: str) -> ResourceWrite:
    """:func:`index_resource` of a Patient, Practitioner or Organization: a patient's records
    repeat its Patient, a clinic's its Organization. Its content hash and rows are kept by its
    compact JSON (``jsonfast.memo_key``, which is also its body's text), so a repeat costs one
    orjson dump and a lookup (docs/performance.md#prepare)."""
    key = memo_key(resource)
    if key is not None and (known := _SHARED.get(key)) is not None:
        return ResourceWrite(rtype, resource["id"], JsonText(key.decode()), known[0], True,
                             *known[1])
    canonical, text = dumps_pair(resource)
    digest, rows = hashlib.sha256(canonical).hexdigest(), _index_rows(resource, rtype)
    if key is not None and faithful(key):
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[key] = (digest, rows)
    return ResourceWrite(rtype, resource["id"], JsonText(text), digest, True, *rows)


#: Content hash and index rows of shared resources by their compact JSON (pure, bounded).
_SHARED: dict[bytes, tuple[str, tuple[tuple[tuple[str, str, str], ...], ...]]] = {}
_SHARED_MAX = 4096


_NAME_AND_LOW = itemgetter(0, 1)


def _index_rows(resource: dict[str, Any], rtype: str
                ) -> tuple[tuple[tuple[str, str, str], ...], ...]:
    """(tokens, strings, dates, refs) of a resource, each row once, dates lowest first."""
    tokens: list[tuple[str, str, str]] = []
    strings: list[tuple[str, str, str]] = []
    dates: list[tuple[str, str, str]] = []
    refs: list[tuple[str, str, str]] = []
    for name, kind, steps, path, only in _compiled(rtype):
        nodes = evaluate(resource, steps)
        if not nodes:  # most parameters of a resource
            continue
        if kind == "token":
            for node in nodes:
                _add_tokens(tokens, name, node, path)
        elif kind == "string":
            strings += [(name, normalize(v), v[:MAX_TEXT]) for n in nodes for v in _strings(n)]
        elif kind == "date":
            dates += [(name, low, high) for node in nodes for low, high in _dates(node)]
        else:
            for node in nodes:
                _add_refs(refs, name, node, only)
    dates.sort(key=_NAME_AND_LOW)
    return (tuple(dict.fromkeys(tokens)), tuple(dict.fromkeys(strings)), tuple(dates),
            tuple(dict.fromkeys(refs)))


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the resource's canonical JSON (sorted keys): what decides a new version."""
    return hashlib.sha256(dumps_sorted(resource)).hexdigest()




def resource_set(
    record: SessionRecord, settings: MappingSettings, amended: frozenset[str] = frozenset()
) -> ResourceSet:
    """Every FHIR resource of a record (as ``mapping.to_fhir`` builds it, with logical ids) and
    its index rows. Shared resources carry the record with the greatest ``source_key``: the
    newest ``recorded_at`` (as a UTC instant), ties broken by session id. ``amended``: the
    Observations an earlier version had with another value (docs/clinical.md)."""
    bundle, references = mapped(record, settings, amended=amended)
    writes = tuple(index_resource(r)
                   for r in stored_resources(bundle, copy_=False, references=references))
    return ResourceSet(source_key=source_key(record), resources=writes)


def source_key(record: SessionRecord) -> str:
    """``<recorded_at as UTC bound>|<session_id>``: orders the records carrying shared data."""
    return f"{date_bounds(record.recorded_at)[0]}|{record.session_id}"


__all__ = ["SHARED_TYPES", "branches", "content_hash", "evaluate", "index_resource", "normalize",
           "resource_set", "source_key"]
