"""Structural validation by the FHIR R4 4.0.1 definitions (docs/validation.md#stages).

One walk over the JSON,
guided by the shapes compiled from the R4 table (``r4defs``): every property must be an element
of its type (unknown -> ``structure:unknown``), arrays exactly where the element repeats
(``structure:array``), each value of its type (``structure:type``) and primitive format
(``structure:format``), no empty objects/arrays or nulls (ele-1, ``structure:empty``), min/max
(``card:<element id>``), one type per choice (``structure:choice``), ``resourceType`` an R4
resource (``structure:resourceType``), contained resources walked as resources, the core
required bindings (``binding:<element id>``) and the core invariants (rule id = the key).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhir_iastm.validation import r4defs as defs
from fhir_iastm.validation import r4rules
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.memo import by_identity
from fhir_iastm.validation.r4defs import Element, Shape
from fhir_iastm.validation.r4inv import run_core
from fhir_iastm.validation.r4prim import PLAIN as _PLAIN
from fhir_iastm.validation.r4prim import PRIMITIVE_RULES as _PRIMITIVE_RULES
from fhir_iastm.validation.r4prim import primitive_problem, real_day
from fhir_iastm.validation.scan import Scan, classify

_INDEX = re.compile(r"\[\d+\]")


Check = Callable[[str], object]
#: (element, type code, ``_plain_of``, ``_inner_of``, ``_plain_of`` for a single value: None when
#: the element repeats) of one JSON key
_Key = tuple[Element, str, Check | None, Shape | None, Check | None]


def _key(element: Element, key: str) -> _Key:
    """The walk's entry for one JSON key of an element."""
    code = element.keys[key]
    plain = _plain_of(element, code)
    return (element, code, plain, _inner_of(element, code), None if element.many else plain)


def _plain_of(element: Element, code: str) -> Check | None:
    """The quick check of a string primitive with no binding nor invariant (``_QUICK``): when
    it holds, ``Walker.value`` has nothing to say and no path needs to be built."""
    return _QUICK.get(code) if element.valueset is None and not element.constraints else None


def _inner_of(element: Element, code: str) -> Shape | None:
    """The shape of a complex type's value when ``Walker.value`` would only hand it to
    ``complex`` (no binding to check after), else None."""
    if code in _PRIMITIVE_RULES or code == "Resource" or element.valueset is not None:
        return None
    return defs.shape(element.children or code)


def _common(shape: Shape) -> dict[str, _Key]:
    """JSON key -> its ``_Key``, for the keys ``members`` hands to ``property`` directly: not
    a choice, not ``contained``; kept as ``shape.walk``."""
    shape.walk = {
        key: _key(element, key)
        for key, element in shape.by_key.items()
        if not element.choice and key != "contained"
    }
    return shape.walk


#: per choice element: JSON key of one of its types -> that key's ``_Key``, filled as met
_choice_keys: Callable[[Element], dict[str, _Key]] = by_identity(lambda _element: {})


def _choice_key(element: Element, key: str) -> _Key:
    """The ``_Key`` of a choice element's JSON key (``valueQuantity``), made once."""
    keys = _choice_keys(element)
    found = keys.get(key)
    if found is None:
        found = keys[key] = _key(element, key)
    return found


#: True: a type's invariant that the value has just met as its element's is not run again
#: (``_others``); False runs both (tests/validation/test_validation_fastpaths.py compares)
SKIP_MET = True
#: the quick checks of ``_plain_of``: the primitive rules, and r4rules' (urn:uuid case,
#: canonical form) where it has one
_QUICK: dict[str, Callable[[str], object]] = _PLAIN | r4rules.QUICK
#: r4rules' checks by complex / primitive type (docs/validation.md#core-codes, #uris)
_CODED, _URI_CHECKS = r4rules.CODED, r4rules.URI_CHECKS
#: Elements walked by another stage (Bundle entries are validated one by one, with a resolver).
_ELSEWHERE = frozenset({"Bundle.entry.resource"})


class Walker:
    """Walks one resource; issues go to ``ctx`` (paths relative to the resource)."""

    __slots__ = ("complete", "ctx", "entries", "found", "quiet", "root", "shape_checks")

    def __init__(
        self,
        ctx: ValidationContext,
        *,
        shape_checks: bool = True,
        entries: bool = False,
        collect: bool = False,
    ) -> None:
        self.ctx = ctx
        self.shape_checks = shape_checks
        self.entries = entries
        #: (path, type) of the resource being walked: rule ids name elements from it
        self.root = ("", "")
        #: with ``collect``: what ``scan.scan`` finds, noted on the way (``classify``); valid
        #: only while the walk has entered every object ``scan`` enters (``complete``)
        self.found = Scan() if collect else None
        self.complete = True
        #: > 0 inside what ``scan`` does not enter (``contained``, ``_element``)
        self.quiet = 0

    def error(self, code: str, path: str, message: str, rule: str) -> None:
        """A structural error (suppressed when only invariants and bindings are wanted); the
        walk then may not enter everything ``scan`` would."""
        self.complete = False
        if self.shape_checks:
            self.ctx.add("error", code, path, message, rule)

    def resource(self, value: Any, path: str) -> None:
        """A resource at ``path``: its type, its elements, its root invariants."""
        rtype = value.get("resourceType") if isinstance(value, dict) else None
        if not isinstance(value, dict) or not isinstance(rtype, str):
            self.error(
                "structure", path, "a resource needs a resourceType", "structure:resourceType"
            )
            return
        if rtype not in defs.resource_types():
            self.error(
                "structure",
                path,
                f"unknown resource type {rtype!r}: not a FHIR R4 4.0.1 resource",
                "structure:resourceType",
            )
            return
        shape = defs.shape(rtype)
        assert shape is not None  # every R4 resource type has a definition
        outer, self.root = self.root, (path, rtype)
        self.members(value, shape, path)
        run_core(shape.constraints, value, path, None, self.ctx, contained=path != rtype)
        self.root = outer

    def element_id(self, path: str, name: str = "") -> str:
        """The element id of a place in the resource, as profiles name it
        (``Patient.name[0].use`` -> ``Patient.name.use``; inside a contained resource, from
        that resource's type)."""
        root_path, root_type = self.root
        rest = _INDEX.sub("", path[len(root_path) :])
        return f"{root_type}{rest}.{name}" if name else f"{root_type}{rest}"

    def members(self, value: dict[str, Any], shape: Shape, path: str) -> None:
        """Every property of an object (one type per choice), then min/max of the elements."""
        choices: dict[str, str] = {}
        common = shape.walk if shape.walk is not None else _common(shape)
        for key, item in value.items():
            found = common.get(key)
            if found is None:
                self.member(key, item, value, shape, path, choices)
                continue
            single = found[4]
            if single is None or not isinstance(item, str) or not single(item):
                self.property(key, item, found[0], value, path, found)
        if value.keys() >= shape.present_ok:  # all present once, as they may be: the others
            for element in shape.always:
                self.cardinality(value, element, path)
            return
        for element in shape.counted:
            if element.many or element.choice or element.name not in value:
                self.cardinality(value, element, path)  # else: present once, as it may be

    def member(
        self,
        key: str,
        item: Any,
        value: dict[str, Any],
        shape: Shape,
        path: str,
        choices: dict[str, str],
    ) -> None:
        """One property of an object, whatever it is: ``resourceType``, a ``_key``, a choice,
        ``contained``, an unknown name."""
        if key == "resourceType" and shape.path == shape.type_name:
            return
        underscored = key[:1] == "_"
        base = key[1:] if underscored else key
        element = shape.by_key.get(base)
        if element is not None and element.choice:
            first = choices.setdefault(element.id, base)
            if first != base:
                self.error(
                    "structure",
                    f"{path}.{base}",
                    f"{element.name} has one type only: {first} and {base}",
                    "structure:choice",
                )
        if element is None:
            self.error(
                "structure",
                f"{path}.{key}",
                f"unknown element {key!r} in {shape.path} (FHIR R4 4.0.1)",
                "structure:unknown",
            )
        elif underscored:
            self.quiet += 1
            self.primitive_extras(key, item, element, value, path)
            self.quiet -= 1
        elif key == "contained":
            self.quiet += 1
            self.property(
                key, item, element, value, path, (element, element.keys[key], None, None, None)
            )
            self.quiet -= 1
        else:
            self.property(key, item, element, value, path, _choice_key(element, key))

    def property(
        self,
        key: str,
        item: Any,
        element: Element,
        owner: dict[str, Any],
        path: str,
        how: _Key,
    ) -> None:
        """One JSON property (``how``: element, type code, ``_plain_of``, ``_inner_of``): array
        or single as the element repeats, then each value."""
        _element, code, plain, inner, _single = how
        if element.many:
            if not isinstance(item, list):
                self.error(
                    "structure",
                    f"{path}.{key}",
                    f"{key} repeats: it must be an array",
                    "structure:array",
                )
                item = [item]
            elif not item:
                self.error("structure", f"{path}.{key}", "empty array", "structure:empty")
            for i, value in enumerate(item):
                if plain is not None and isinstance(value, str) and plain(value):
                    continue
                where = f"{path}.{key}[{i}]"
                if value is None:
                    extras = owner.get("_" + key)
                    ext = extras[i] if isinstance(extras, list) and i < len(extras) else None
                    if ext is None:
                        self.error("structure", where, "null in an array", "structure:empty")
                    continue
                if self.found is not None and not self.quiet and isinstance(value, dict):
                    classify(key, value, where, self.found)
                if inner is not None:
                    self.complex(value, inner, where, element.constraints)  # as ``value`` would
                else:
                    self.value(value, element, code, where)
        elif isinstance(item, list):
            self.error(
                "structure",
                f"{path}.{key}",
                f"{key} does not repeat: an array is not allowed",
                "structure:array",
            )
        elif item is None:
            self.error("structure", f"{path}.{key}", "null is not a value", "structure:empty")
        elif plain is not None and isinstance(item, str) and plain(item):
            return
        else:
            where = f"{path}.{key}"
            if self.found is not None and not self.quiet and isinstance(item, dict):
                classify(key, item, where, self.found)
            if inner is not None:
                self.complex(item, inner, where, element.constraints)  # as ``value`` would
            else:
                self.value(item, element, code, where)

    def primitive_extras(
        self, key: str, item: Any, element: Element, owner: dict[str, Any], path: str
    ) -> None:
        """``_status``: the id/extensions of a primitive value (an ``Element``)."""
        if not defs.is_primitive(element.keys[key[1:]]):
            self.error(
                "structure", f"{path}.{key}", f"{key[1:]} is not a primitive", "structure:unknown"
            )
            return
        items = item if isinstance(item, list) and element.many else [item]
        shape = defs.shape("Element")
        assert shape is not None
        for i, value in enumerate(items):
            where = f"{path}.{key}[{i}]" if element.many else f"{path}.{key}"
            if value is None and element.many:
                continue
            if isinstance(value, dict):
                self.complex(value, shape, where, ())
            else:
                self.error("structure", where, "expected an object", "structure:type")
        del owner

    def value(self, value: Any, element: Element, code: str, path: str) -> None:
        """One value of an element, checked as its type."""
        rule = _PRIMITIVE_RULES.get(code)
        if rule is not None:
            kind, pattern, dated = rule
            if (
                kind != defs.STRING
                or not isinstance(value, str)
                or (pattern is not None and not pattern.fullmatch(value))
                or (dated and not real_day(value))
            ):
                self.primitive(value, code, path)  # the full check, reporting what is wrong
            elif (uri_check := _URI_CHECKS.get(code)) is not None:
                uri_check(value, path, self.error)
            if element.valueset is not None and isinstance(value, str):
                self.code_binding(value, element, path)
            if element.constraints:  # Narrative.div's txt-1, txt-2
                run_core(element.constraints, value, path, code, self.ctx)
        elif code == "Resource":
            if element.id not in _ELSEWHERE or self.entries:
                self.resource(value, path)
            else:
                self.complete = False  # not entered here
        else:
            shape = defs.shape(element.children or code)
            if shape is None:  # a type code the table does not define: never in R4 4.0.1
                self.error("structure", path, f"unknown type {code}", "structure:type")
                return
            self.complex(value, shape, path, element.constraints)
            if element.valueset is not None and isinstance(value, dict):
                self.coded_binding(value, code, element, path)

    def complex(self, value: Any, shape: Shape, path: str, constraints: tuple[str, ...]) -> None:
        """An object of a complex type or backbone element, then its invariants."""
        if not isinstance(value, dict):
            self.error("structure", path, f"expected an object ({shape.path})", "structure:type")
            return
        if not value or (len(value) == 1 and "id" in value):
            self.error(
                "structure",
                path,
                "ele-1: an element needs a value or children",
                "structure:empty",
            )
            return
        before = len(self.ctx.issues)
        self.members(value, shape, path)
        if len(self.ctx.issues) != before:  # a data type's invariants judge well-formed data only
            return
        refs = shape.type_constraints  # (a type's shape: its path is its type name)
        if constraints:
            run_core(constraints, value, path, shape.path, self.ctx)
            if SKIP_MET and refs and len(self.ctx.issues) == before:  # all met: met again (ext-1)
                refs = _others(refs, constraints)
        if refs:
            run_core(refs, value, path, shape.path, self.ctx)
        if (coded := _CODED.get(shape.path)) is not None:  # docs/validation.md#core-codes
            coded(value, path, self.ctx)

    def primitive(self, value: Any, code: str, path: str) -> None:
        """JSON type, range and the spec's regex of a primitive value."""
        problem = primitive_problem(value, code)
        if problem is not None:
            self.error(problem[0], path, problem[1], problem[2])

    def code_binding(self, value: str, element: Element, path: str) -> None:
        """A ``code`` element bound (required) to a core ValueSet."""
        codes = defs.valueset_codes(str(element.valueset))
        if codes is not None and value not in codes[0]:
            self.ctx.add(
                "error",
                "code-invalid",
                path,
                f"{value!r} is not in the required ValueSet {element.valueset}",
                f"binding:{self.element_id(path)}",
            )

    def coded_binding(self, value: dict[str, Any], code: str, element: Element, path: str) -> None:
        """A Coding / CodeableConcept bound (required) to a core ValueSet: some coding in it."""
        codes = defs.valueset_codes(str(element.valueset))
        if codes is None or code not in ("Coding", "CodeableConcept"):
            return
        codings = value.get("coding") if code == "CodeableConcept" else [value]
        if not isinstance(codings, list) or not codings:
            return  # text only: nothing coded to check
        pairs = {
            (c.get("system"), c.get("code"))
            for c in codings
            if isinstance(c, dict)
            and isinstance(c.get("system"), str)
            and isinstance(c.get("code"), str)
        }
        if not pairs & codes[1]:
            self.ctx.add(
                "error",
                "code-invalid",
                path,
                f"no coding is in the required ValueSet {element.valueset}",
                f"binding:{self.element_id(path)}",
            )

    def cardinality(self, value: dict[str, Any], element: Element, path: str) -> None:
        """min/max of one element."""
        for first in element.keys:
            if first in value or "_" + first in value:
                break
        else:
            if element.min > 0:
                self.error(
                    "required",
                    path,
                    f"{element.id}: minimum required = {element.min}, but only found 0",
                    f"card:{self.element_id(path, element.name)}",
                )
            return
        if not element.many or (element.min <= 1 and element.max is None):
            return
        item = value.get(first) or value.get("_" + first)
        count = len(item) if isinstance(item, list) else 1
        if count < element.min or (element.max is not None and count > element.max):
            self.error(
                "structure",
                path,
                f"{element.id}: {count} found, allowed {element.min}..{element.max or '*'}",
                f"card:{self.element_id(path, element.name)}",
            )


@cache
def _others(refs: tuple[str, ...], met: tuple[str, ...]) -> tuple[str, ...]:
    """``refs`` but those in ``met``: a type's invariants its element restates (``ext-1`` on
    ``Procedure.extension``), which the same value has just met under the same type."""
    return tuple(ref for ref in refs if ref not in met)


def check_r4(
    resource: dict[str, Any],
    ctx: ValidationContext,
    *,
    shape_checks: bool = True,
    entries: bool = False,
    collect: bool = False,
) -> Scan | None:
    """Walk one resource by the R4 definitions (``entries``: walk ``Bundle.entry.resource`` too;
    without, the Bundle stage validates each entry). ``shape_checks=False`` keeps only the core
    required bindings and invariants (for resources built through models, e.g. the mapper's).
    With ``collect``, returns what ``scan.scan(resource)`` would, noted during the walk — or
    None when the walk did not enter all of it (malformed input: then call ``scan``)."""
    walker = Walker(ctx, shape_checks=shape_checks, entries=entries, collect=collect)
    walker.resource(
        resource,
        str(resource.get("resourceType"))
        if isinstance(resource.get("resourceType"), str)
        else "Resource",
    )
    return walker.found if walker.complete else None


__all__ = ["Walker", "check_r4"]
