"""The core R4 invariants fhirpathpy cannot evaluate, evaluated natively in its place.

fhirpathpy has no ordering of Quantities (``low <= high`` raises on two Quantities) and no
``resolve()``, so two core rules would fail on every value they apply to with "invariant could
not be evaluated": ``rng-2`` (every Range with both bounds) and ``ctm-1`` (every CareTeam
participant). ``INSTEAD`` holds a function for each, given the value (a Range, a participant)
and ``%resource``; it is the rule itself, not a twin of a FHIRPath that works
(docs/validation.md#r4-gaps).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fhirpathpy.engine.nodes import ResourceNode

from fhir_iastm.profiles.definitions import CompiledFn

Rule = Callable[[Any, Any], bool]


def _quantity(value: Any) -> tuple[Decimal | None, tuple[Any, Any]]:
    """(value, unit) of a Quantity; the unit is (system, code), or (None, unit) without a code."""
    if not isinstance(value, dict):
        raise ValueError("a bound that is not a Quantity")
    number = value.get("value")
    amount = Decimal(str(number)) if isinstance(number, int | float) else None
    unit = (value.get("system"), value["code"]) if value.get("code") else (None, value.get("unit"))
    return amount, unit


def rng_2(value: Any, _resource: Any) -> bool:
    """``low.empty() or high.empty() or (low <= high)``: a bound without a value cannot be
    ordered (fails, as in HAPI); bounds in different units would need a unit conversion this
    validator does not do: reported as not evaluated rather than judged."""
    low = value.get("low") if isinstance(value, dict) else None
    high = value.get("high") if isinstance(value, dict) else None
    if not low or not high:
        return True
    (a, unit_a), (b, unit_b) = _quantity(low), _quantity(high)
    if a is None or b is None:
        return False
    if unit_a != unit_b:
        raise ValueError(f"low and high are in different units ({unit_a[1]}, {unit_b[1]})")
    return a <= b


def ctm_1(value: Any, resource: Any) -> bool:
    """``onBehalfOf.exists() implies (member.resolve().iif(empty(), true,
    ofType(Practitioner).exists()))``: offline only a contained member (``#id``) resolves."""
    if not isinstance(value, dict) or not value.get("onBehalfOf"):
        return True
    member = value.get("member")
    ref = member.get("reference") if isinstance(member, dict) else None
    contained = resource.get("contained") if isinstance(resource, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#") or not isinstance(contained, list):
        return True
    for item in contained:
        if isinstance(item, dict) and f"#{item.get('id')}" == ref:
            return item.get("resourceType") == "Practitioner"
    return True


#: R4 table constraint key -> the rule evaluated in place of its FHIRPath.
INSTEAD: dict[str, Rule] = {"rng-2": rng_2, "ctm-1": ctm_1}


def compiled_instead(rule: Rule) -> CompiledFn:
    """``rule`` as a compiled FHIRPath: called with the value (a node when typed) and the
    environment, it answers a one-item collection."""

    def fn(data: Any, env: dict[str, Any]) -> list[Any]:
        value = data.data if isinstance(data, ResourceNode) else data
        return [rule(value, env.get("resource"))]

    return fn


__all__ = ["INSTEAD", "compiled_instead", "ctm_1", "rng_2"]
