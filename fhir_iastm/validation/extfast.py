"""A plain extension checked against its definition in one step (docs/validation.md#compiled-walks).

Most extension definitions say only: this ``url``, one ``value[x]`` of these types (perhaps
bound to a ValueSet), no nested extensions. For an extension instance that is exactly that — its
``url``, one single ``value<Type>`` of an allowed type, no ``extension`` — the differential walk
(``elements.check_resource``) can find nothing but the value's binding: ``check_extension``
then runs that binding check alone. Anything else takes the full walk. Same issues either way
(tests/validation/test_validation_fastpaths.py, ``FAST`` False compares).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_iastm.profiles import ElementNode
from fhir_iastm.validation.bindings import check_binding
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.elements import NodePlan, check_resource, plan_of
from fhir_iastm.validation.memo import by_identity

#: False sends every extension through the full walk (the tests compare both ways)
FAST = True


@dataclass(frozen=True, slots=True)
class Plain:
    """What a plain extension definition asks: its fixed url and its value's types
    (``value[x]`` suffixes); ``value`` is the value's element when it has a binding."""

    url: str
    suffixes: frozenset[str]
    value: ElementNode | None


def _fits_once(node: ElementNode) -> bool:
    """One value is within the element's bounds."""
    return (node.min or 0) <= 1 and (node.max_int is None or node.max_int >= 1)


def _bare(node: ElementNode, plan: NodePlan) -> bool:
    """Nothing below the element, no slices, no pattern, no invariants."""
    return (
        not plan.children
        and not node.slices
        and node.pattern is None
        and not node.constraints
        and _fits_once(node)
    )


def _plain_of(root: ElementNode) -> Plain | None:
    plan = plan_of(root)
    if plan.typed or root.fixed or root.pattern or root.binding or root.constraints:
        return None
    children = {name: (child, child_plan) for name, child, child_plan, _c, _n in plan.children}
    if set(children) - {"extension", "url", "value[x]"}:
        return None
    if "extension" in children:
        node, nested = children["extension"]
        if not nested.inert or node.slices or node.min:
            return None
    if "url" not in children or "value[x]" not in children:
        return None
    url, url_plan = children["url"]
    value, value_plan = children["value[x]"]
    fixed = url.fixed[1] if url.fixed is not None else None
    if (
        not isinstance(fixed, str)
        or url_plan.typed
        or url.binding is not None
        or not _bare(url, url_plan)
        or not value_plan.typed
        or value.fixed is not None
        or "Reference" in value_plan.codes
        or not _bare(value, value_plan)
    ):
        return None
    return Plain(fixed, value_plan.suffixes, value if value.binding is not None else None)


#: The plain form of an extension definition (by its differential root), or None; made once.
plain_extension: Callable[[ElementNode], Plain | None] = by_identity(_plain_of)


def _value_key(ext: dict[str, Any]) -> str | None:
    """The one ``value<Type>`` key of an extension; None when there is none or more."""
    found = None
    for key in ext:
        if key.startswith("value") and key[5:6].isupper():
            if found is not None:
                return None
            found = key
    return found


def check_extension(
    root: ElementNode, ext: dict[str, Any], ctx: ValidationContext, path: str
) -> None:
    """``elements.check_resource(root, ext, ctx, path)``, in one step for a plain extension."""
    plain = plain_extension(root) if FAST else None
    if plain is not None and "extension" not in ext and ext.get("url") == plain.url:
        key = _value_key(ext)
        if key is not None and key[5:] in plain.suffixes and not isinstance(ext[key], list):
            if plain.value is not None:
                check_binding(plain.value, f"{path}.{key}", ext[key], ctx)
            return
    check_resource(root, ext, ctx, path)


__all__ = ["FAST", "Plain", "check_extension", "plain_extension"]
