"""The core R4 4.0.1 invariants of the R4 table, compiled once, with native twins.

Each invariant is compiled with fhirpathpy on first use and evaluated by
``invariants.run`` (empty result fails, an exception is an error issue: docs/decisions.md#d3).
The hottest ones, met on nearly every resource, have native twins registered by their FHIRPath
text in ``invariants.NATIVE``; tests/validation/test_validation_native.py proves each agrees
with its FHIRPath on every context the tests meet. Not evaluated here: ``ele-1`` (checked as
JSON shape by ``r4check``: no empty object, array or null) and ``bdl-3``/``bdl-7`` (the Bundle
stage checks them per entry, located on the entry: ``validation/bundle.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from fhir_iastm.errors import ConfigError
from fhir_iastm.profiles import Constraint, compile_constraint
from fhir_iastm.profiles.compile import html_checks
from fhir_iastm.validation import invariants
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.fhirpath_gaps import INSTEAD, compiled_instead
from fhir_iastm.validation.invariants import UCUM
from fhir_iastm.validation.native import BASE_BY_KEY, Native
from fhir_iastm.validation.r4defs import constraint
from fhir_iastm.validation.scan import instant

#: Checked elsewhere, natively (see the module docstring).
ELSEWHERE = frozenset({"ele-1", "bdl-3", "bdl-7"})
#: Invariants that apply only where their subject is present: ref-1 is about a local
#: ``reference``; on a Reference with only an identifier or display its literal FHIRPath result
#: is empty (``{}.startsWith('#')``), which docs/decisions.md#d3 would count as a failure, while
#: the rule (and HAPI) says nothing there.
#: The same holds for bdl-8 (``fullUrl.contains('/_history/').not()``) without a fullUrl.
APPLIES: dict[str, Any] = {
    "ref-1": lambda v: isinstance(v, dict) and "reference" in v,
    "bdl-8": lambda v: isinstance(v, dict) and "fullUrl" in v,
}
#: The DomainResource rules are about the container: not evaluated on a contained resource
#: (dom-6, narrative, is a best practice for the resource itself).
CONTAINER_ONLY = frozenset({"dom-2", "dom-3", "dom-4", "dom-5", "dom-6"})
#: fhirpathpy is stricter than FHIR's FHIRPath in one place the core rules use: ``as()`` on a
#: collection (dom-3's ``descendants().as(canonical)``) raises; ``ofType()`` is its meaning.
REWRITES = (("descendants().as(", "descendants().ofType("),)


def fhirpath_text(ref: str) -> str:
    """The expression of a table invariant as fhirpathpy evaluates it (``REWRITES``)."""
    text = constraint(ref)[3]
    for old, new in REWRITES:
        text = text.replace(old, new)
    return text


def _contained_without(*fields: tuple[str, ...]) -> Native:
    """``contained.a.b.empty() and …``: no contained resource has any of ``fields``."""

    def check(r: Any, _t: str) -> bool | None:
        items = r.get("contained") if isinstance(r, dict) else None
        if not items:
            return True
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return None
        for item in items:
            for field in fields:
                owner = item.get(field[0]) if len(field) == 2 else item
                if not isinstance(owner, dict):
                    if owner is not None:
                        return None
                    continue
                if owner.get(field[-1]) not in (None, []):
                    return False
        return True

    return check


def _strings(obj: Any, refs: set[str], other: set[str], key: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _strings(v, refs, other, k)
    elif isinstance(obj, list):
        for v in obj:
            _strings(v, refs, other, key)
    elif isinstance(obj, str) and obj.startswith("#"):
        (refs if key == "reference" else other).add(obj)


def _dom_3(r: Any, _t: str) -> bool | None:
    """Every contained resource is referenced from the resource (``#id``), or the resource
    refers to its container (``#``); a ``#id`` met outside a ``reference`` -> FHIRPath."""
    items = r.get("contained") if isinstance(r, dict) else None
    if not items:
        return True
    if not isinstance(items, list):
        return None
    refs: set[str] = set()
    other: set[str] = set()
    _strings(r, refs, other)
    if "#" in refs:
        return True
    for item in items:
        rid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(rid, str) or f"#{rid}" in other:
            return None
        if f"#{rid}" not in refs:
            return False
    return True


def _per_1(p: Any, _t: str) -> bool | None:
    if not isinstance(p, dict) or p.get("start") is None or p.get("end") is None:
        return True if isinstance(p, dict) else None
    start, end = instant(p.get("start")), instant(p.get("end"))
    return None if start is None or end is None else start <= end


def _ref_1(r: Any, _t: str) -> bool | None:
    ref = r.get("reference") if isinstance(r, dict) else None
    return True if isinstance(ref, str) and not ref.startswith("#") else None


def _ext_1(e: Any, _t: str) -> bool | None:
    if not isinstance(e, dict):
        return None
    has_value = any(k.startswith("value") and k[5:6].isupper() for k in e)
    return bool(e.get("extension")) != has_value


def _dom_6(r: Any, _t: str) -> bool | None:
    text = r.get("text") if isinstance(r, dict) else None
    return isinstance(text, dict) and text.get("div") is not None


@lru_cache(maxsize=2)
def _html_ok(div: str) -> bool:
    """``htmlChecks()`` of one narrative (txt-1 and txt-2 share the text: parsed once)."""
    return html_checks([div])[0]


def _txt(div: Any, _t: str) -> bool | None:
    """txt-1, txt-2 (``htmlChecks()``) on ``Narrative.div``: the same function FHIRPath calls."""
    return _html_ok(div) if isinstance(div, str) else None


def _absent_or(field: str, *needs: str) -> Native:
    """``field.empty() or need.exists()`` (any of ``needs``)."""

    def check(v: Any, _t: str) -> bool | None:
        if not isinstance(v, dict):
            return None
        return v.get(field) in (None, [], {}) or any(v.get(n) not in (None, []) for n in needs)

    return check


def _has_abatement(r: dict[str, Any]) -> bool:
    return any(k.startswith("abatement") and r[k] not in (None, [], {}) for k in r)


def _no_home(v: Any, _t: str) -> bool | None:
    """org-2/org-3 on one Address/ContactPoint: ``where(use = 'home').empty()``."""
    return v.get("use") != "home" if isinstance(v, dict) else None


def _org_1(r: Any, _t: str) -> bool | None:
    if not isinstance(r, dict):
        return None
    count = 0
    for key in ("identifier", "name"):
        value = r.get(key)
        count += len(value) if isinstance(value, list) else int(value is not None)
    return count > 0


def _drt_1(d: Any, _t: str) -> bool | None:
    if not isinstance(d, dict):
        return None
    if d.get("code") is None:
        return True
    return d.get("system") == UCUM and d.get("value") is not None


def _codings(cc: Any) -> list[Any] | None:
    if cc is None:
        return []
    coding = cc.get("coding", []) if isinstance(cc, dict) else None
    return coding if isinstance(coding, list) else None


def _obs_7(r: Any, _t: str) -> bool | None:
    """No component code shares a coding with Observation.code when a value is present."""
    if not isinstance(r, dict):
        return None
    if not any(k.startswith("value") and k[5:6].isupper() for k in r) or not r.get("component"):
        return True
    own, components = _codings(r.get("code")), r.get("component")
    if own is None or not isinstance(components, list):
        return None
    for component in components:
        theirs = _codings(component.get("code")) if isinstance(component, dict) else None
        if theirs is None:
            return None
        if any(c in own for c in theirs):
            return False
    return True


def _entries(b: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """(Bundle.type, entries) when both have the shape the twins model, else None."""
    kind = b.get("type") if isinstance(b, dict) else None
    entries = b.get("entry", [])
    if not isinstance(kind, str) or not isinstance(entries, list):
        return None
    if not all(isinstance(e, dict) for e in entries):
        return None
    return kind, entries


def _bundle_twin(check: Callable[[str, list[dict[str, Any]], dict[str, Any]], bool]) -> Native:
    def twin(b: Any, _t: str) -> bool | None:
        found = _entries(b)
        return None if found is None else check(found[0], found[1], b)

    return twin


def _first_is(entries: list[dict[str, Any]], resource_type: str) -> bool:
    first = entries[0].get("resource") if entries else None
    return isinstance(first, dict) and first.get("resourceType") == resource_type


def _document_identifier(b: dict[str, Any]) -> bool:
    ident = b.get("identifier")
    return (
        isinstance(ident, dict)
        and ident.get("system") is not None
        and (ident.get("value") is not None)
    )


_RESPONSES = ("batch-response", "transaction-response", "history")
BUNDLE_NATIVE: dict[str, Native] = {
    "bdl-1": _bundle_twin(lambda k, _e, b: b.get("total") is None or k in ("searchset", "history")),
    "bdl-2": _bundle_twin(
        lambda k, e, _b: k == "searchset" or all(x.get("search") in (None, {}) for x in e)
    ),
    "bdl-4": _bundle_twin(
        lambda k, e, _b: all((x.get("response") is not None) == (k in _RESPONSES) for x in e)
    ),
    "bdl-9": _bundle_twin(lambda k, _e, b: k != "document" or _document_identifier(b)),
    "bdl-10": _bundle_twin(lambda k, _e, b: k != "document" or isinstance(b.get("timestamp"), str)),
    "bdl-11": _bundle_twin(lambda k, e, _b: k != "document" or _first_is(e, "Composition")),
    "bdl-12": _bundle_twin(lambda k, e, _b: k != "message" or _first_is(e, "MessageHeader")),
    "bdl-5": lambda e, _t: (
        any(e.get(k) is not None for k in ("resource", "request", "response"))
        if isinstance(e, dict)
        else None
    ),
    "bdl-8": lambda e, _t: (
        "/_history/" not in e["fullUrl"]
        if isinstance(e, dict) and isinstance(e.get("fullUrl"), str)
        else None
    ),
}

#: Twins that only short-cut the common case (no contained resource, no local reference) and
#: leave every other input to the FHIRPath: they never answer False themselves.
SHORTCUT_ONLY = frozenset({"ref-1", "con-4"})

#: R4 constraint key -> native twin (value, type name) -> True/False, None = ask FHIRPath.
R4_NATIVE: dict[str, Native] = {
    "dom-2": _contained_without(("contained",)),
    "dom-3": _dom_3,
    "dom-4": _contained_without(("meta", "versionId"), ("meta", "lastUpdated")),
    "dom-5": _contained_without(("meta", "security")),
    "dom-6": _dom_6,
    "txt-1": _txt,
    "txt-2": _txt,
    "per-1": _per_1,
    "ref-1": _ref_1,
    "ext-1": _ext_1,
    "qty-3": _absent_or("code", "system"),
    "cpt-2": _absent_or("value", "system"),
    "att-1": _absent_or("data", "contentType"),
    "con-4": lambda r, _t: True if isinstance(r, dict) and not _has_abatement(r) else None,
    "drt-1": _drt_1,
    "obs-7": _obs_7,
    "org-1": _org_1,
    "org-2": _no_home,
    "org-3": _no_home,
    **BASE_BY_KEY,
    **BUNDLE_NATIVE,
}


def register_natives() -> None:
    """Register the twins by their R4 FHIRPath text (once, at import)."""
    for key, fn in R4_NATIVE.items():
        invariants.NATIVE.setdefault(invariants.normalise(fhirpath_text(key)), fn)


@cache
def compiled(ref: str) -> Constraint | None:
    """One table invariant compiled with fhirpathpy (None: fhirpathpy cannot parse it)."""
    key, severity, human, _text = constraint(ref)
    if ref in INSTEAD:  # fhirpathpy cannot evaluate it: the rule runs natively
        rule = compiled_instead(INSTEAD[ref])
        return Constraint(key, severity, human, fhirpath_text(ref), rule, needs_utc=False)
    raw = {"key": key, "severity": severity, "human": human, "expression": fhirpath_text(ref)}
    try:
        return compile_constraint(raw, "FHIR R4 4.0.1 core")
    except ConfigError:
        return None


def run_core(
    refs: tuple[str, ...],
    value: Any,
    path: str,
    type_name: str | None,
    ctx: ValidationContext,
    contained: bool = False,
) -> None:
    """Evaluate the core invariants ``refs`` on one value (``type_name`` None: a resource;
    ``contained``: a contained resource)."""
    root = ctx.root if ctx.root is not None else value
    invariants.run_all(_plan(refs, contained), value, root, path, ctx, type_name)


@cache
def _plan(refs: tuple[str, ...], contained: bool) -> tuple[invariants.Check, ...]:
    """The invariants of ``refs`` this module evaluates (on a contained resource or not),
    compiled, with their native twins and ``APPLIES`` tests."""
    plan = []
    for ref in refs:
        if ref in ELSEWHERE or (contained and ref in CONTAINER_ONLY):
            continue
        found = compiled(ref)
        if found is not None:
            plan.append((found, invariants.native_for(found.expression), APPLIES.get(ref)))
    return tuple(plan)


register_natives()

__all__ = [
    "APPLIES",
    "CONTAINER_ONLY",
    "ELSEWHERE",
    "R4_NATIVE",
    "SHORTCUT_ONLY",
    "compiled",
    "fhirpath_text",
    "register_natives",
    "run_core",
]
