"""FHIRPath invariants (compiled once at profile load) and the base-spec ones we must hold.

Rules (docs/decisions.md#d3): an invariant whose result is empty FAILS; an exception while
evaluating becomes an error issue "invariant could not be evaluated"; ordering comparisons run
on a copy whose date-times are all UTC with millisecond precision (fhirpathpy ignores offsets).
Hot rules may run natively (``NATIVE``); ``tests/test_validation_invariants.py`` proves each native
rule agrees with its FHIRPath text. Base R4 rules checked here: con-3 (warning), con-5, obs-6,
per-1 and ext-1 (native). Rule id = the constraint key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhirpathpy.engine.nodes import ResourceNode

from fhir_iastm.profiles import FHIRPATH_R4_TYPES, Constraint, ElementNode, compile_constraint
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.native import BASE_BY_KEY, NATIVE_BY_TEXT, Native
from fhir_iastm.validation.scan import instant, utc_copy

_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

#: Base R4 invariants (keys, severities, expressions of FHIR 4.0.1; con-5 as docs/decisions.md#d3
#: words it).
BASE_RULES: dict[str, tuple[dict[str, str], ...]] = {
    "Condition": (
        {
            "key": "con-3",
            "severity": "warning",
            "human": "Condition.clinicalStatus SHALL be present if verificationStatus is not "
            "entered-in-error and category is problem-list-item",
            "expression": "clinicalStatus.exists() or verificationStatus.coding.where(system='"
            + _VER
            + "' and code = 'entered-in-error').exists() or "
            "category.select($this='problem-list-item').empty()",
        },
        {
            "key": "con-5",
            "severity": "error",
            "human": "Condition.clinicalStatus SHALL NOT be present if verification Status is "
            "entered-in-error",
            "expression": "verificationStatus.coding.where(system='"
            + _VER
            + "' and code='entered-in-error').empty() or clinicalStatus.empty()",
        },
    ),
    "Observation": (
        {
            "key": "obs-6",
            "severity": "error",
            "human": "dataAbsentReason SHALL only be present if Observation.value[x] is not "
            "present",
            "expression": "dataAbsentReason.empty() or value.empty()",
        },
    ),
}

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
    **{
        " ".join(rule["expression"].split()): BASE_BY_KEY[rule["key"]]
        for rules in BASE_RULES.values()
        for rule in rules
    },
}


def normalise(expression: str) -> str:
    """Whitespace-normalised expression text (the key of ``NATIVE``)."""
    return " ".join(expression.split())


@cache
def native_for(expression: str) -> Native | None:
    """The native twin of an expression, if one is registered (looked up once per text)."""
    return NATIVE.get(normalise(expression))


@cache
def base_constraints(resource_type: str) -> tuple[Constraint, ...]:
    """Compiled base-spec invariants for a resource type (compiled once per process)."""
    return tuple(
        compile_constraint(raw, "FHIR R4 base") for raw in BASE_RULES.get(resource_type, ())
    )


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
    return passes(constraint.fn(data, {"resource": root}))


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
    node: ElementNode, path: str, key: str, value: Any, ctx: ValidationContext
) -> None:
    """The invariants declared on one element, evaluated for one of its values."""
    root = ctx.root if ctx.root is not None else value
    if "." not in node.id:
        type_name = None if value is root else node.id
        for constraint in node.constraints:
            run(constraint, value, root, path, ctx, type_name)
        return
    element_path = node.id.split(":")[0] if ":" in node.id.rsplit(".", 1)[-1] else node.id
    type_name = _type_name(element_path, key, node)
    for constraint in node.constraints:
        run(constraint, value, root, path, ctx, type_name)


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


def _type_name(element_path: str, key: str, node: ElementNode) -> str:
    if node.name.endswith("[x]") and key != node.name:
        suffix = key[len(node.name) - 3 :]
        return suffix[0].lower() + suffix[1:] if suffix in _PRIMITIVES else suffix
    clean = ".".join(part.split(":")[0] for part in element_path.split("."))
    return str(FHIRPATH_R4_TYPES["path2Type"].get(clean) or clean)


def check_base(resource: dict[str, Any], declared: set[str], ctx: ValidationContext) -> None:
    """Base-spec invariants the profile did not (re)declare."""
    for constraint in base_constraints(str(resource.get("resourceType"))):
        if constraint.key not in declared:
            run(constraint, resource, resource, str(resource["resourceType"]), ctx)


def check_periods(periods: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    """per-1 natively: start <= end when both are full date-times (compared as instants)."""
    for path, period in periods:
        start, end = instant(period.get("start")), instant(period.get("end"))
        if start is not None and end is not None and start > end:
            ctx.add(
                "error",
                "invariant",
                path,
                "per-1: If present, start SHALL have a lower value than end",
                "per-1",
            )


def check_quantities(quantities: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    """qty-3 natively: ``code.empty() or system.exists()`` on every Quantity value."""
    for path, quantity in quantities:
        if quantity.get("code") is not None and quantity.get("system") is None:
            ctx.add(
                "error",
                "invariant",
                path,
                "qty-3: If a code for the unit is present, the system SHALL also be present",
                "qty-3",
            )


def check_extension_shape(
    extensions: list[tuple[str, dict[str, Any]]], ctx: ValidationContext
) -> None:
    """ext-1 natively: an extension has either nested extensions or a value[x], not both."""
    for path, ext in extensions:
        has_value = any(k.startswith("value") and k[5:6].isupper() for k in ext)
        if bool(ext.get("extension")) == has_value:
            ctx.add(
                "error",
                "invariant",
                path,
                "ext-1: Must have either extensions or value[x], not both",
                "ext-1",
            )


__all__ = [
    "BASE_RULES",
    "NATIVE",
    "PERIOD_ORDER",
    "base_constraints",
    "check_base",
    "check_element_constraints",
    "check_extension_shape",
    "check_periods",
    "check_quantities",
    "evaluate",
    "evaluate_fhirpath",
    "native_for",
    "normalise",
    "passes",
]
