"""FHIRPath invariants (compiled once at profile load) and the base-spec ones we must hold.

Rules (docs/decisions.md#d3): an invariant whose result is empty FAILS; an exception while
evaluating becomes an error issue "invariant could not be evaluated"; ordering comparisons run
on a copy whose date-times are all UTC with millisecond precision (fhirpathpy ignores offsets).
Hot rules may run natively (``NATIVE``); ``tests/validation/test_validation_native.py`` proves
each native rule agrees with its FHIRPath text. The core R4 invariants come from the R4 table
(``r4inv``). Rule id = the constraint key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from fhirpathpy.engine.nodes import ResourceNode

from fhir_iastm.profiles import FHIRPATH_R4_TYPES, Constraint, ElementNode
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.native import NATIVE_BY_TEXT, Native
from fhir_iastm.validation.scan import instant, utc_copy

_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
UCUM = "http://unitsofmeasure.org"

PERIOD_ORDER = "performed.ofType(Period).all(start.exists() and end.exists() and start < end)"


def _period_order(resource: dict[str, Any], strict: bool) -> bool | None:
    period = resource.get("performedPeriod")
    if period is None:
        return True
    if not isinstance(period, dict):
        return None
    start, end = instant(period.get("start")), instant(period.get("end"))
    if start is None or end is None:
        return None  # partial dates or absent bounds: let FHIRPath decide
    return start < end if strict else start <= end


#: Normalised FHIRPath text -> native check (True/False, or None = evaluate the FHIRPath).
NATIVE: dict[str, Native] = {
    PERIOD_ORDER: lambda r, _t: _period_order(r, strict=True),
    PERIOD_ORDER.replace("start < end", "start <= end"): lambda r, _t: _period_order(
        r, strict=False
    ),
    **NATIVE_BY_TEXT,
}


def normalise(expression: str) -> str:
    """Whitespace-normalised expression text (the key of ``NATIVE``)."""
    return " ".join(expression.split())


@cache
def native_for(expression: str) -> Native | None:
    """The native twin of an expression, if one is registered (looked up once per text)."""
    return NATIVE.get(normalise(expression))


def passes(result: list[Any]) -> bool:
    """FHIRPath result -> verdict; empty fails (as HAPI does)."""
    if not result:
        return False
    bools = [x for x in result if isinstance(x, bool)]
    return all(bools) if bools else True


def evaluate_fhirpath(
    constraint: Constraint, data: Any, root: dict[str, Any], type_name: str | None = None
) -> bool:
    """The compiled FHIRPath on ``data`` (the resource, or an element of ``type_name``), with
    date-times normalised to UTC when the expression orders values; may raise."""
    if constraint.needs_utc:
        data = utc_copy(data)
    if type_name is not None:
        data = ResourceNode.create_node(data, type_name)
    return passes(constraint.fn(data, {"resource": root, "rootResource": root, "ucum": UCUM}))


def evaluate(
    constraint: Constraint, data: Any, root: dict[str, Any], type_name: str | None = None
) -> bool:
    """Run one invariant: its native twin when registered and sure, else the FHIRPath."""
    native = native_for(constraint.expression)
    if native is not None:
        verdict = native(data, type_name or str(data.get("resourceType", "")))
        if verdict is not None:
            return verdict
    return evaluate_fhirpath(constraint, data, root, type_name)


#: True: ``run_all`` takes a native twin's True answer without the rest of ``run`` (the same
#: verdict: ``run`` would record nothing; tests/validation/test_validation_fast.py). False sends
#: every invariant through ``evaluate`` (where the native-twin test compares twin and FHIRPath).
FAST = True

#: (constraint, its native twin or None, a test of the value it applies to or None)
Check = tuple[Constraint, Native | None, Callable[[Any], bool] | None]


def checks_of(constraints: Iterable[Constraint]) -> tuple[Check, ...]:
    """Constraints with their native twins (``run_all``'s plan), found once."""
    return tuple((c, native_for(c.expression), None) for c in constraints)


def run_all(
    checks: tuple[Check, ...],
    data: Any,
    root: dict[str, Any],
    path: str,
    ctx: ValidationContext,
    type_name: str | None = None,
) -> None:
    """``run`` each check that applies to ``data``; a native twin's True is taken as it is."""
    for constraint, native, applies in checks:
        if applies is not None and not applies(data):
            continue
        if native is not None and FAST:
            try:
                if native(data, type_name or str(data.get("resourceType", ""))) is True:
                    continue
            except Exception:  # noqa: BLE001, S110 - ``run`` evaluates it again and reports it
                pass
        run(constraint, data, root, path, ctx, type_name)


def run(
    constraint: Constraint,
    data: Any,
    root: dict[str, Any],
    path: str,
    ctx: ValidationContext,
    type_name: str | None = None,
) -> None:
    """Evaluate and record a failure; an exception becomes an error issue."""
    try:
        ok = evaluate(constraint, data, root, type_name)
    except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exception; never crash
        ctx.add(
            "error",
            "invariant",
            path,
            f"invariant could not be evaluated: {constraint.key}: {exc}",
            constraint.key,
        )
        return
    if not ok:
        ctx.add(
            constraint.severity,
            "invariant",
            path,
            f"{constraint.key}: {constraint.human} [{constraint.expression}]",
            constraint.key,
        )


def check_element_constraints(
    node: ElementNode,
    checks: tuple[Check, ...],
    path: str,
    key: str,
    value: Any,
    ctx: ValidationContext,
) -> None:
    """The invariants declared on one element (``checks_of(node.constraints)``), evaluated for
    one of its values."""
    root = ctx.root if ctx.root is not None else value
    if "." not in node.id:
        type_name = None if value is root else node.id
    else:
        type_name = _element_type(node.id, node.name, key)
    run_all(checks, value, root, path, ctx, type_name)


@cache
def _element_type(node_id: str, name: str, key: str) -> str:
    """The FHIRPath type of an element's value held under JSON ``key`` (once per element)."""
    element_path = node_id.split(":")[0] if ":" in node_id.rsplit(".", 1)[-1] else node_id
    if name.endswith("[x]") and key != name:
        suffix = key[len(name) - 3 :]
        return suffix[0].lower() + suffix[1:] if suffix in _PRIMITIVES else suffix
    clean = ".".join(part.split(":")[0] for part in element_path.split("."))
    return str(FHIRPATH_R4_TYPES["path2Type"].get(clean) or clean)


_PRIMITIVES = frozenset(
    [
        "Boolean",
        "Integer",
        "String",
        "Decimal",
        "Uri",
        "Url",
        "Canonical",
        "Base64Binary",
        "Instant",
        "Date",
        "DateTime",
        "Time",
        "Code",
        "Oid",
        "Id",
        "Markdown",
        "UnsignedInt",
        "PositiveInt",
        "Uuid",
    ]
)


__all__ = [
    "NATIVE",
    "FAST",
    "PERIOD_ORDER",
    "check_element_constraints",
    "evaluate",
    "evaluate_fhirpath",
    "native_for",
    "normalise",
    "checks_of",
    "passes",
    "run_all",
]
