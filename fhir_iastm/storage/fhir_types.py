"""The values the FHIR resource store takes and gives — no SQLAlchemy here.

``ResourceSet`` is what a record version writes (the facade builds it: bodies and index rows);
``SearchQuery`` is a parsed FHIR search (the facade builds it from the request) and
``SearchResult`` what ``Store.search`` answers. Dates are inclusive UTC bounds as fixed-width text
(``YYYY-MM-DDTHH:MM:SS.ffffff``), so they compare the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fhir_iastm.jsonfast import dumps_compact

#: Reference to a resource: (type, logical id).
Key = tuple[str, str]


class JsonText(str):
    """A JSON value already serialized as the JSON columns write it (:func:`compact_json`): the
    store writes it unchanged. ``facade.extract.index_resource`` gives each resource body this
    way, encoded with its content hash's text (``jsonfast.dumps_pair``)."""

    __slots__ = ()


def compact_json(value: Any) -> str:
    """JSON columns as written: no spaces after separators, UTF-8 kept (not ``\\u`` escaped);
    a :class:`JsonText` is already that text. ``json.dumps``'s bytes, written faster
    (:func:`fhir_iastm.jsonfast.dumps_compact`)."""
    if value.__class__ is JsonText:
        return str(value)
    return dumps_compact(value)


@dataclass(frozen=True, slots=True)
class ResourceWrite:
    """One resource of a record version with its search index rows (``body``: the resource, or
    its :class:`JsonText`)."""

    resource_type: str
    resource_id: str
    body: dict[str, Any] | JsonText = field(repr=False)
    content_hash: str
    shared: bool
    tokens: tuple[tuple[str, str, str], ...] = ()  # (param, system or "", code)
    strings: tuple[tuple[str, str, str], ...] = ()  # (param, normalized, exact)
    dates: tuple[tuple[str, str, str], ...] = ()  # (param, low, high), lowest first per param
    refs: tuple[tuple[str, str, str], ...] = ()  # (param, target type, target id)


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """Every resource of one record version. ``source_key`` orders the records that carry a
    shared resource (Patient, Practitioner, Organization): the greatest key's data wins."""

    source_key: str
    resources: tuple[ResourceWrite, ...]


@dataclass(frozen=True, slots=True, eq=False)
class StoredResource:
    """One version of a stored resource (``gone``: retracted by a newer record version).

    ``body`` is the resource as stored; a search on SQLite reads only its ``text`` and decodes
    it (``json.loads``, as the JSON column does) when ``body`` is first asked for."""

    pk: int
    resource_type: str
    resource_id: str
    version: int
    last_updated: str  # UTC bound text
    gone: bool
    #: the decoded body (None: not decoded yet, ``text`` holds it)
    decoded: dict[str, Any] | None = field(repr=False)
    #: the body's JSON text as the database holds it (SQLite: as :func:`compact_json` wrote it),
    #: so a searchset can be written without encoding every body again; None elsewhere
    text: str | None = field(default=None, repr=False)
    #: a JSON array of the body's ``resourceType``, ``id``, ``subject`` and ``patient`` (null
    #: where absent), read by the database: the patients a search discloses without decoding
    #: the body (``facade.audit``); None when not read
    head: str | None = field(default=None, repr=False)

    @property
    def body(self) -> dict[str, Any]:
        """The stored resource (decoded from ``text`` on first use)."""
        body = self.decoded
        if body is None:
            body = json.loads(self.text or "null")
            object.__setattr__(self, "decoded", body)
        return body  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredResource):
            return NotImplemented
        return (self.pk, self.resource_type, self.resource_id, self.version, self.last_updated,
                self.gone, self.body) == (other.pk, other.resource_type, other.resource_id,
                                          other.version, other.last_updated, other.gone,
                                          other.body)

    __hash__ = None  # type: ignore[assignment]


# --- search ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TokenMatch:
    """``[system|]code``: system None = any system, "" = no system; code None = any code."""

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class StringMatch:
    """``mode``: start (default), exact, contains; ``text`` normalized unless exact."""

    text: str
    mode: str = "start"


@dataclass(frozen=True, slots=True)
class DateMatch:
    """A prefix and the parameter value's bounds."""

    prefix: str
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class RefMatch:
    """A reference target (type None: any type)."""

    target_type: str | None
    target_id: str


@dataclass(frozen=True, slots=True)
class Chain:
    """``param.chained=value``: resources whose ``param`` targets a match of ``condition``."""

    target_type: str
    condition: Condition


Match = TokenMatch | StringMatch | DateMatch | RefMatch | Chain


@dataclass(frozen=True, slots=True)
class Condition:
    """One parameter of a search: any of ``matches`` (comma OR); ``negate`` for ``:not``;
    ``missing`` for ``:missing=true|false`` (then ``matches`` is empty).
    ``kind``: token | string | date | reference | id | lastUpdated."""

    param: str
    kind: str
    matches: tuple[Match, ...] = ()
    negate: bool = False
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class Sort:
    """``key``: ``_id``, ``_lastUpdated`` or a date parameter's name."""

    key: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """``_include=Source:param[:Target]`` / ``_revinclude`` (the same shape)."""

    source_type: str
    param: str
    target_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search; ``after`` is the keyset position (sort value, pk) of the previous page."""

    resource_type: str
    conditions: tuple[Condition, ...] = ()
    sort: Sort | None = None
    count: int = 50
    after: tuple[str | None, int] | None = None
    total: bool = True
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    max_included: int = 1000


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of matches, what it included, the total (if asked) and the next page's position."""

    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None
    next_after: tuple[str | None, int] | None
    included_truncated: bool = False


__all__ = [
    "JsonText",
    "compact_json",
    "Chain",
    "Condition",
    "DateMatch",
    "Include",
    "Key",
    "Match",
    "RefMatch",
    "ResourceSet",
    "ResourceWrite",
    "SearchQuery",
    "SearchResult",
    "Sort",
    "StoredResource",
    "StringMatch",
    "TokenMatch",
]
