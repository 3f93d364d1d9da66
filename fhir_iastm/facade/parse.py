"""FHIR search parameters (R4 search.html) → a storage ``SearchQuery``.

Pure: takes the query's (name, value) pairs, answers the query or raises ``SearchError`` naming
the parameter. Repeating a parameter ANDs it; commas inside a value OR (``\\,`` is a literal
comma). Unknown parameters are collected in ``Parsed.ignored``: the caller rejects them under
``Prefer: handling=strict`` and reports them under lenient handling (the default). Empty values
are ignored, as the spec asks. A malformed value, an unsupported modifier or a bad ``_count``
is always an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fhir_iastm.errors import IastmError, Issue
from fhir_iastm.facade.cursor import decode_cursor
from fhir_iastm.facade.dates import date_bounds
from fhir_iastm.facade.extract import normalize
from fhir_iastm.facade.params import (
    DATE_PREFIXES,
    MODIFIERS,
    RESOURCE_TYPES,
    SearchParam,
    params_of,
)
from fhir_iastm.storage.fhir_types import (
    Chain,
    Condition,
    DateMatch,
    Include,
    Match,
    RefMatch,
    SearchQuery,
    Sort,
    StringMatch,
    TokenMatch,
)

DEFAULT_COUNT = 50
MAX_COUNT = 500
#: Result parameters read here; ``_format`` and ``_pretty`` are read by the HTTP layer.
RESULT_PARAMS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements",
                 "_total", "_cursor", "_format", "_pretty")
SUMMARY_VALUES = ("true", "false", "data", "count")
_SPLIT = re.compile(r"(?<!\\),")
_REF = re.compile(r"(?:(?P<type>[A-Z][A-Za-z]+)/)?(?P<id>[A-Za-z0-9\-.]{1,64})"
                  r"(?:/_history/[A-Za-z0-9\-.]{1,64})?")


class SearchError(IastmError):
    """A search the facade cannot answer as asked (HTTP 400)."""

    code = "E_BAD_REQUEST"
    http_status = 400
    issue_type = "invalid"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"search parameter '{param}': {message}",
                         [Issue("error", "invalid", diagnostics=f"search parameter '{param}': "
                                f"{message}", details=self.code)])
        self.param = param


@dataclass(frozen=True)
class Parsed:
    """The query, how to present it, and the parameters left out (for lenient handling)."""

    query: SearchQuery
    summary: str | None = None
    elements: tuple[str, ...] = ()
    ignored: list[str] = field(default_factory=list)


def parse_search(rtype: str, args: list[tuple[str, str]], base_url: str,
                 default_count: int = DEFAULT_COUNT) -> Parsed:
    """Parse the query string of ``GET [base]/<rtype>?…`` (``base_url``: our FHIR base)."""
    known = params_of(rtype)
    conditions: list[Condition] = []
    ignored: list[str] = []
    result: dict[str, list[str]] = {}
    for name, value in args:
        if name in RESULT_PARAMS:
            result.setdefault(name, []).append(value)
        elif value == "":
            continue
        else:
            cond = _condition(rtype, known, name, value, base_url)
            if cond is None:
                ignored.append(name)
            else:
                conditions.append(cond)
    summary = _one(result, "_summary", SUMMARY_VALUES)
    count = _count(result, default_count)
    sort = _sort(rtype, result)
    query = SearchQuery(
        resource_type=rtype,
        conditions=tuple(conditions),
        sort=sort,
        count=0 if summary == "count" else count,
        after=decode_cursor(_one(result, "_cursor"), sort),
        total=_one(result, "_total", ("none", "estimate", "accurate")) != "none",
        includes=tuple(_include(rtype, v, reverse=False) for v in _values(result, "_include")),
        revincludes=tuple(_include(rtype, v, reverse=True)
                          for v in _values(result, "_revinclude")),
    )
    elements = tuple(e.strip() for v in _values(result, "_elements") for e in v.split(",")
                     if e.strip())
    return Parsed(query, summary, elements, ignored)


def _values(result: dict[str, list[str]], name: str) -> list[str]:
    return [v for v in result.get(name, []) if v]


def _one(result: dict[str, list[str]], name: str,
         allowed: tuple[str, ...] | None = None) -> str | None:
    values = _values(result, name)
    if len(values) > 1:
        raise SearchError(name, "may be given once")
    value = values[0] if values else None
    if value is not None and allowed is not None and value not in allowed:
        raise SearchError(name, f"must be one of {', '.join(allowed)}")
    return value


def _count(result: dict[str, list[str]], default: int) -> int:
    raw = _one(result, "_count")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise SearchError("_count", f"'{raw}' is not a non-negative integer")
    return min(int(raw), MAX_COUNT)


def _sort(rtype: str, result: dict[str, list[str]]) -> Sort | None:
    raw = _one(result, "_sort")
    if raw is None:
        return None
    if "," in raw:
        raise SearchError("_sort", "only one sort key is supported")
    key = raw.removeprefix("-")
    dates = {n for n, p in params_of(rtype).items() if p.type == "date"}
    if key not in dates | {"_id"}:
        raise SearchError("_sort", f"sorting {rtype} by '{key}' is not supported; use one of "
                          f"{', '.join(sorted(dates | {'_id'}))}")
    return Sort(key, raw.startswith("-"))


def _include(rtype: str, raw: str, *, reverse: bool) -> Include:
    name = "_revinclude" if reverse else "_include"
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCE_TYPES:
        raise SearchError(name, f"'{raw}' is not Type:parameter[:targetType] of a served type")
    source, pname = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    param = params_of(source).get(pname)
    if param is None or param.type != "reference":
        raise SearchError(name, f"'{pname}' is not a reference parameter of {source}")
    if reverse and rtype not in param.targets:
        raise SearchError(name, f"{source}:{pname} never refers to {rtype}")
    if not reverse and source != rtype:
        raise SearchError(name, f"'{raw}' does not start with the searched type {rtype}")
    if target is not None and (target not in param.targets or reverse and target != rtype):
        raise SearchError(name, f"{target} is not a target type of {source}:{pname} here")
    return Include(source, pname, target)


def _condition(rtype: str, known: dict[str, SearchParam], name: str, value: str,
               base_url: str) -> Condition | None:
    """One parameter; None when it is unknown (the caller decides on strict or lenient)."""
    head, dot, chained = name.partition(".")
    pname, _, modifier = head.partition(":")
    param = known.get(pname)
    if param is None:
        return None
    if dot:
        return _chain(param, modifier, chained, value, base_url)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise SearchError(name, "must be true or false")
        return Condition(pname, _kind(param), missing=value == "true")
    if modifier and not (param.type == "reference" and modifier in param.targets) and \
            modifier not in MODIFIERS[param.type]:
        raise SearchError(name, f"modifier ':{modifier}' is not supported on a {param.type} "
                          "parameter")
    matches = tuple(_match(param, name, modifier, v.replace("\\,", ","), base_url)
                    for v in _SPLIT.split(value))
    return Condition(pname, _kind(param), matches, negate=modifier == "not")


def _kind(param: SearchParam) -> str:
    return {"_id": "id", "_lastUpdated": "lastUpdated"}.get(param.name, param.type)


def _chain(param: SearchParam, modifier: str, chained: str, value: str,
           base_url: str) -> Condition:
    name = f"{param.name}{':' + modifier if modifier else ''}.{chained}"
    if param.type != "reference":
        raise SearchError(name, "only reference parameters can be chained")
    if "." in chained:
        raise SearchError(name, "chains of more than one link are not supported")
    types = [modifier] if modifier else list(param.targets)
    chained_name = chained.partition(":")[0]
    found = [t for t in types if t in RESOURCE_TYPES and chained_name in params_of(t)]
    if len(found) != 1:
        raise SearchError(name, f"'{chained_name}' must name a parameter of exactly one target "
                          f"type (found {found or 'none'}); add a type modifier")
    inner = _condition(found[0], params_of(found[0]), chained, value, base_url)
    assert inner is not None  # the parameter is known: checked above
    return Condition(param.name, "reference", (Chain(found[0], inner),))


def _match(param: SearchParam, name: str, modifier: str, value: str, base_url: str) -> Match:
    if value == "":
        raise SearchError(name, "an empty value inside a comma list")
    if param.type == "token":
        system, bar, code = value.partition("|")
        if not bar:
            return TokenMatch(None, value)
        return TokenMatch(system, code or None)
    if param.type == "string":
        if modifier == "exact":
            return StringMatch(value, "exact")
        return StringMatch(normalize(value), "contains" if modifier == "contains" else "start")
    if param.type == "date":
        prefix = value[:2] if value[:2].isalpha() else "eq"
        if prefix not in DATE_PREFIXES:
            raise SearchError(name, f"unknown prefix '{value[:2]}'")
        try:
            low, high = date_bounds(value[2:] if value[:2].isalpha() else value)
        except ValueError as exc:
            raise SearchError(name, str(exc)) from None
        return DateMatch(prefix, low, high)
    return _reference(param, name, modifier, value, base_url)


def _reference(param: SearchParam, name: str, modifier: str, value: str,
               base_url: str) -> RefMatch:
    if "://" in value:
        prefix = base_url.rstrip("/") + "/"
        if not value.startswith(prefix):
            return RefMatch(None, value)  # another server's resource: never ours
        value = value[len(prefix):]
    match = _REF.fullmatch(value)
    if match is None:
        raise SearchError(name, f"'{value}' is not an id, Type/id or a URL under {base_url}")
    rtype = match["type"] or (modifier or None)
    if rtype is not None and rtype not in param.targets:
        raise SearchError(name, f"{rtype} is not a target type of '{param.name}'")
    if modifier and match["type"] and match["type"] != modifier:
        raise SearchError(name, f"the value's type {match['type']} contradicts ':{modifier}'")
    return RefMatch(rtype, match["id"])


__all__ = ["DEFAULT_COUNT", "MAX_COUNT", "Parsed", "SearchError", "parse_search"]
