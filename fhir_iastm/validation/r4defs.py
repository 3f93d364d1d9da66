"""The FHIR R4 4.0.1 definitions (fhir_iastm/data/r4.json.gz) compiled for validation.

The table is derived from the official definitions by
scripts/derive_r4.py (docs/r4-definitions.md). Each type, and each backbone element inside one,
compiles once (lazily, cached) into a :class:`Shape`: the JSON property names it allows, each
mapped to its element definition and the type that property holds (``performedPeriod`` ->
``performed[x]`` as ``Period``).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

#: JSON kinds of the primitive types (everything else is a JSON string).
BOOLEAN, INTEGER, DECIMAL, STRING = "boolean", "integer", "decimal", "string"
_JSON_KIND = {
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "positiveInt": INTEGER,
    "unsignedInt": INTEGER,
    "decimal": DECIMAL,
}


@cache
def table() -> dict[str, Any]:
    """The committed R4 table, read once per process."""
    raw = resources.files("fhir_iastm").joinpath("data/r4.json.gz").read_bytes()
    loaded: dict[str, Any] = json.loads(gzip.decompress(raw))
    return loaded


@cache
def resource_types() -> frozenset[str]:
    """The concrete (non-abstract) R4 resource types."""
    types = table()["types"]
    return frozenset(n for n, t in types.items() if t["kind"] == "resource" and not t["abstract"])


@cache
def primitive_pattern(name: str) -> re.Pattern[str] | None:
    """The spec's regex for a primitive type, compiled once (None: no regex, e.g. xhtml)."""
    regex = table()["primitives"].get(name)
    # the spec's regexes are XML Schema / Java ones: \s and \d are ASCII classes there
    return re.compile(regex, re.ASCII) if regex else None


@cache
def primitives() -> frozenset[str]:
    """The R4 primitive types (``string``, ``date``, ``code``…)."""
    return frozenset(table()["primitives"])


def is_primitive(name: str) -> bool:
    """True for the R4 primitive types."""
    return name in primitives()


def json_kind(name: str) -> str:
    """The JSON type a primitive is written as."""
    return _JSON_KIND.get(name, STRING)


@dataclass(frozen=True, slots=True)
class Element:
    """One element definition (a snapshot element of the table)."""

    id: str
    name: str
    min: int
    many: bool
    max: int | None
    #: JSON property -> type code ("performedPeriod" -> "Period", "status" -> "code")
    keys: dict[str, str]
    #: Reference/canonical target types per JSON property (empty: any)
    targets: tuple[str, ...]
    valueset: str | None
    #: invariant refs of the table, but ele-1 (checked as JSON shape: no empty object/array/null)
    constraints: tuple[str, ...]
    #: the path whose children this element has (a backbone element or a contentReference)
    children: str | None
    #: a choice of types (``value[x]``): one JSON property per type
    choice: bool = False


@dataclass(slots=True)
class Shape:
    """The compiled shape of a type or a backbone element."""

    type_name: str
    path: str
    by_key: dict[str, Element] = field(default_factory=dict)
    elements: tuple[Element, ...] = ()
    constraints: tuple[str, ...] = ()
    #: the elements whose count can be wrong when present or absent (min > 0, bounded max > 1)
    counted: tuple[Element, ...] = ()
    #: the names of the ``counted`` elements that are fine when present (single, not a choice)
    present_ok: frozenset[str] = frozenset()
    #: the ``counted`` elements to check even when present (repeating, or a choice)
    always: tuple[Element, ...] = ()
    #: the invariants of the type itself (``constraints`` when this is a type, not a backbone)
    type_constraints: tuple[str, ...] = ()
    #: the walker's own table of this shape (``r4check``), made on its first use
    walk: Any = None


def _upper(code: str) -> str:
    return code[:1].upper() + code[1:]


def _element(path: str, raw: list[Any], has_children: bool) -> Element:
    minimum, maximum, types, ref, valueset, constraints = raw
    name = path.rsplit(".", 1)[-1]
    codes = [code for code, _targets in types]
    if name.endswith("[x]"):
        keys = {name[:-3] + _upper(code): code for code in codes}
    else:
        keys = {name: codes[0] if codes else "BackboneElement"}
    targets = tuple(t for _code, ts in types for t in ts)
    children = path if has_children else ref
    return Element(
        id=path,
        name=name,
        min=int(minimum),
        many=maximum != "1" and maximum != "0",
        max=None if maximum == "*" else int(maximum),
        keys=keys,
        targets=targets,
        valueset=valueset,
        constraints=tuple(c for c in constraints if c != "ele-1"),
        children=children,
        choice=len(keys) > 1,
    )


@cache
def _children(type_name: str) -> dict[str, list[str]]:
    """parent path -> its direct child paths, for one type's snapshot."""
    out: dict[str, list[str]] = {}
    for path in table()["types"][type_name]["elements"]:
        if "." in path:
            out.setdefault(path.rsplit(".", 1)[0], []).append(path)
    return out


def type_of_path(path: str) -> str:
    """The type that owns a path (``Questionnaire.item.item`` -> ``Questionnaire``)."""
    return path.split(".", 1)[0]


@cache
def shape(path: str) -> Shape | None:
    """The compiled shape of a type (``Procedure``, ``Period``) or a backbone element path
    (``Procedure.performer``); None for an unknown type."""
    type_name = type_of_path(path)
    definition = table()["types"].get(type_name)
    if definition is None:
        return None
    elements = definition["elements"]
    children_of = _children(type_name)
    own = elements.get(path)
    own_constraints = tuple(c for c in own[5] if c != "ele-1") if own else ()
    compiled = Shape(type_name, path, constraints=own_constraints)
    built = []
    for child in children_of.get(path, []):
        element = _element(child, elements[child], child in children_of)
        if child == f"{path}.id" and definition["kind"] == "resource" and path == type_name:
            # the 4.0.1 snapshots type Resource.id as a FHIRPath System.String; the resource
            # pages, the XML and JSON schemas make it an ``id`` (docs/r4-definitions.md#r4b)
            element = replace(element, keys={"id": "id"})
        built.append(element)
        for key in element.keys:
            compiled.by_key[key] = element
    compiled.elements = tuple(built)
    compiled.counted = tuple(
        e for e in built if e.min > 0 or (e.many and (e.min > 1 or e.max is not None))
    )
    compiled.present_ok = frozenset(e.name for e in compiled.counted if not e.many and not e.choice)
    compiled.always = tuple(e for e in compiled.counted if e.many or e.choice)
    compiled.type_constraints = own_constraints if path == type_name else ()
    return compiled


@cache
def valueset_codes(url: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]] | None:
    """A required-binding ValueSet as (codes, (system, code) pairs); None: not expandable."""
    pairs = table()["valuesets"].get(url)
    if pairs is None:
        return None
    return frozenset(c for _s, c in pairs), frozenset((s, c) for s, c in pairs)


def constraint(ref: str) -> tuple[str, str, str, str]:
    """(rule key, severity, human, expression) of a table constraint (``inv-1#2`` -> inv-1)."""
    severity, human, expression = table()["constraints"][ref]
    return ref.split("#", 1)[0], severity, human, expression


__all__ = [
    "BOOLEAN",
    "DECIMAL",
    "INTEGER",
    "STRING",
    "Element",
    "Shape",
    "constraint",
    "is_primitive",
    "json_kind",
    "primitive_pattern",
    "primitives",
    "resource_types",
    "shape",
    "table",
    "type_of_path",
    "valueset_codes",
]
