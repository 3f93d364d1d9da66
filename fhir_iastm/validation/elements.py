"""Walk a resource dict along a profile's differential tree.

Checks cardinality (incl. slices and extensions by URL), fixed[x]/pattern[x], bindings,
types/targetProfile, slicing (value/pattern discriminators, closed rules) and element-level
invariants. Rule ids: ``card:<element id>``, ``slice:<slice element id>``, ``slicing:<element id>``
(closed slicing), ``fixed:``/``pattern:``/``binding:``/``type:``/``target:<element id>``. Spec:
https://hl7.org/fhir/R4/profiling.html#slicing
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_iastm.profiles import ElementNode
from fhir_iastm.validation.bindings import check_binding
from fhir_iastm.validation.context import ValidationContext, claimed_profiles
from fhir_iastm.validation.invariants import check_element_constraints, checks_of
from fhir_iastm.validation.matching import fixed_matches, matcher, pattern_matches, slice_for
from fhir_iastm.validation.memo import by_identity

#: A value at an element: (FHIRPath location, JSON key, value).
Located = tuple[str, str, Any]

_UNSET = object()


def values_at(parent: dict[str, Any], name: str, parent_path: str) -> list[Located]:
    """The values of element ``name`` (``value[x]`` matches ``valueQuantity`` …) in one parent."""
    if name.endswith("[x]"):
        base = name[:-3]
        keys = [k for k in parent if k.startswith(base) and k[len(base) : len(base) + 1].isupper()]
    else:
        keys = [name] if name in parent else []
    out: list[Located] = []
    for key in keys:
        value = parent[key]
        if isinstance(value, list):
            out.extend((f"{parent_path}.{key}[{i}]", key, v) for i, v in enumerate(value))
        else:
            out.append((f"{parent_path}.{key}", key, value))
    return out


def check_resource(
    root: ElementNode, data: dict[str, Any], ctx: ValidationContext, path: str | None = None
) -> None:
    """Check a resource (or, with its ``path``, an extension instance) against a differential."""
    where = path or str(data.get("resourceType") or root.name)
    _check_value(root, plan_of(root), where, root.name, data, ctx)


class NodePlan:
    """What the walk needs of one differential element, computed once per element: its type
    codes (and their ``value[x]`` suffixes), its children as (name, node, plan, choice, whether
    an absent one can still be wrong: a minimum or slices to count) and its slices with theirs."""

    __slots__ = (
        "checks",
        "children",
        "codes",
        "fixed",
        "idle",
        "inert",
        "max",
        "min",
        "pattern",
        "slices",
        "suffixes",
        "typed",
    )

    def __init__(self, node: ElementNode) -> None:
        self.min = node.min or 0
        self.max = node.max_int
        self.codes = frozenset(t.code for t in node.types)
        self.suffixes = frozenset(c[:1].upper() + c[1:] for c in self.codes)
        self.checks = checks_of(node.constraints)
        #: fixed[x] / pattern[x] as one ``matcher`` each (None: none)
        self.fixed = matcher(node.fixed[1], exact=True) if node.fixed is not None else None
        self.pattern = matcher(node.pattern[1]) if node.pattern is not None else None
        #: whether ``_type_ok`` can say anything: a choice's type, a Reference's target
        self.typed = bool(node.types) and (node.name.endswith("[x]") or "Reference" in self.codes)
        children = (
            (name, child, plan_of(child), name.endswith("[x]"), bool(child.min or child.slices))
            for name, child in node.children.items()
        )
        # a child with nothing to check (``idle``) is left out of the walk
        self.children = tuple(c for c in children if not c[2].idle)
        self.slices = tuple((name, sliced, plan_of(sliced)) for name, sliced in node.slices.items())
        #: ``_check_value`` has nothing to check on a value of this element
        self.inert: bool = not (
            self.typed
            or node.fixed is not None
            or node.pattern is not None
            or node.binding is not None
            or node.constraints
            or self.children
        )
        #: nor ``_check_element`` on its values in a parent: no bounds, no slices
        self.idle: bool = self.inert and not self.slices and self.min == 0 and self.max is None


#: The plan of one element and, through it, of its subtree, made once per node (nodes are not
#: changed once their profile is compiled).
plan_of: Callable[[ElementNode], NodePlan] = by_identity(NodePlan)


def check_value(node: ElementNode, path: str, key: str, value: Any, ctx: ValidationContext) -> None:
    """Checks on one value of an element, then its children (a value of a type the element
    does not allow still gets its fixed/pattern/binding checks, as HAPI reports them)."""
    _check_value(node, plan_of(node), path, key, value, ctx)


def _check_value(
    node: ElementNode, plan: NodePlan, path: str, key: str, value: Any, ctx: ValidationContext
) -> None:
    typed = _type_ok(node, plan, key, path, value, ctx) if plan.typed else True
    if plan.fixed is not None and not plan.fixed(value):
        _fixed_or_pattern(node, "fixed", node.fixed[1], path, value, ctx)  # type: ignore[index]
    if plan.pattern is not None and not plan.pattern(value):
        _fixed_or_pattern(node, "pattern", node.pattern[1], path, value, ctx)  # type: ignore[index]
    if node.binding is not None:
        check_binding(node, path, value, ctx)
    if not typed:
        return
    if node.constraints:
        check_element_constraints(node, plan.checks, path, key, value, ctx)
    if plan.children and isinstance(value, dict):
        _check_children(plan, path, value, ctx)


def _check_children(
    plan: NodePlan, path: str, value: dict[str, Any], ctx: ValidationContext
) -> None:
    """Each child element of one value: its count, then each of its values (``_counted``,
    written out for a child that is neither a choice nor sliced: no list of locations built)."""
    for name, child, child_plan, choice, counted in plan.children:
        if not choice and not child_plan.slices:
            found = value.get(name, _UNSET)
            if found is _UNSET:
                if counted:
                    _counted(child, child_plan, [], path, ctx, "card")
                continue
            count = len(found) if isinstance(found, list) else 1
            if count < child_plan.min or (child_plan.max is not None and count > child_plan.max):
                _cardinality(child, count, path, ctx, "card")
            if child_plan.inert:
                continue
            if count == 1 and not isinstance(found, list):
                _check_value(child, child_plan, f"{path}.{name}", name, found, ctx)
            else:
                for i, item in enumerate(found):
                    _check_value(child, child_plan, f"{path}.{name}[{i}]", name, item, ctx)
            continue
        if choice:
            values = values_at(value, name, path)
        elif name not in value:
            if counted:
                _check_element(child, child_plan, [], path, ctx)
            continue
        else:
            found = value[name]
            values = (
                [(f"{path}.{name}[{i}]", name, v) for i, v in enumerate(found)]
                if isinstance(found, list)
                else [(f"{path}.{name}", name, found)]
            )
        if child_plan.slices:
            _check_element(child, child_plan, values, path, ctx)
        elif values or counted:
            _counted(child, child_plan, values, path, ctx, "card")  # _check_element's part


def _fixed_or_pattern(
    node: ElementNode, rule: str, spec: Any, path: str, value: Any, ctx: ValidationContext
) -> None:
    """fixed[x] (exact) or pattern[x] (subset) of one value; each mismatch located."""
    if (fixed_matches if rule == "fixed" else pattern_matches)(spec, value):
        return
    wording = "be exactly" if rule == "fixed" else "match pattern"
    for where in mismatch_paths(spec, value, path):
        ctx.add("error", "value", where, f"value must {wording} {spec!r}", f"{rule}:{node.id}")


def mismatch_paths(expected: Any, value: Any, path: str) -> list[str]:
    """Where a fixed/pattern value differs: the first differing property of an object (HAPI
    names the leaf, e.g. ``valueQuantity.system``), every pattern property when the value is
    not an object, else the element itself (lists and primitives)."""
    if not isinstance(expected, dict):
        return [path]
    if not isinstance(value, dict):
        return [f"{path}.{k}" for k in expected]
    for k, sub in expected.items():
        if k not in value:
            return [f"{path}.{k}"]
        if not pattern_matches(sub, value[k]):
            return [path] if isinstance(sub, list) else mismatch_paths(sub, value[k], f"{path}.{k}")
    return [path]


def check_element(
    node: ElementNode, values: list[Located], parent_path: str, ctx: ValidationContext
) -> None:
    """Cardinality of an element within one parent, each value, then its slices."""
    _check_element(node, plan_of(node), values, parent_path, ctx)


def _check_element(
    node: ElementNode,
    plan: NodePlan,
    values: list[Located],
    parent_path: str,
    ctx: ValidationContext,
) -> None:
    _counted(node, plan, values, parent_path, ctx, "card")
    if plan.slices:
        _check_slices(node, plan, values, parent_path, ctx)


def _counted(
    node: ElementNode,
    plan: NodePlan,
    values: list[Located],
    parent_path: str,
    ctx: ValidationContext,
    kind: str,
) -> None:
    """min/max of an element (``card``) or a slice (``slice``) in one parent, then each value."""
    count = len(values)
    if count < plan.min or (plan.max is not None and count > plan.max):
        _cardinality(node, count, parent_path, ctx, kind)
    if plan.inert:
        return
    for path, key, value in values:
        _check_value(node, plan, path, key, value, ctx)


def _check_slices(
    node: ElementNode,
    plan: NodePlan,
    values: list[Located],
    parent_path: str,
    ctx: ValidationContext,
) -> None:
    matched: dict[str, list[Located]] = {name: [] for name, _n, _p in plan.slices}
    for located in values:
        name = slice_for(node, located[1], located[2], ctx.index)
        if name is None:
            if node.slicing is not None and node.slicing.rules == "closed":
                ctx.add(
                    "error",
                    "structure",
                    located[0],
                    f"value matches no slice of closed slicing on {node.id}",
                    f"slicing:{node.id}",
                )
            continue
        matched[name].append(located)
    for name, slice_node, slice_plan in plan.slices:
        _counted(slice_node, slice_plan, matched[name], parent_path, ctx, "slice")


def _cardinality(
    node: ElementNode, count: int, parent_path: str, ctx: ValidationContext, kind: str
) -> None:
    if node.min is not None and count < node.min:
        ctx.add(
            "error",
            "required",
            parent_path,
            f"{node.id}: minimum required = {node.min}, but only found {count}",
            f"{kind}:{node.id}",
        )
    limit = node.max_int
    if limit is not None and count > limit:
        ctx.add(
            "error",
            "structure",
            parent_path,
            f"{node.id}: max allowed = {limit}, but found {count}",
            f"{kind}:{node.id}",
        )


def _type_ok(
    node: ElementNode, plan: NodePlan, key: str, path: str, value: Any, ctx: ValidationContext
) -> bool:
    codes = plan.codes
    if key != node.name and node.name.endswith("[x]"):
        suffix = key[len(node.name) - 3 :]
        if suffix not in plan.suffixes:
            # an extension's value of the wrong type is reported on the extension (as HAPI does)
            where = path.rsplit(".", 1)[0] if node.id == "Extension.value[x]" else path
            ctx.add(
                "error",
                "structure",
                where,
                f"type {suffix} is not allowed here (allowed: {', '.join(sorted(codes))})",
                f"type:{node.id}",
            )
            return False
    if "Reference" in codes and isinstance(value, dict):
        _check_target(node, path, value, ctx)
    return True


def _check_target(
    node: ElementNode, path: str, value: dict[str, Any], ctx: ValidationContext
) -> None:
    targets = [p for t in node.types if t.code == "Reference" for p in t.target_profiles]
    reference = value.get("reference")
    if not targets or ctx.resolve is None or not isinstance(reference, str):
        return
    target = ctx.resolve(reference)
    if target is None:
        return
    allowed_types = {_profile_type(url, ctx) for url in targets}
    target_type = str(target.get("resourceType"))
    if target_type not in allowed_types:
        ctx.add(
            "error",
            "structure",
            path,
            f"reference {reference} points to {target_type}, allowed: "
            f"{', '.join(sorted(t for t in allowed_types if t))}",
            f"target:{node.id}",
        )
        return
    claimed = set(claimed_profiles(target))
    ours = {url for url in targets if url in ctx.index.profiles}
    if claimed and ours and not claimed & set(targets) and claimed & set(ctx.index.profiles):
        ctx.add(
            "error",
            "structure",
            path,
            f"reference {reference} must conform to one of {sorted(ours)}",
            f"target:{node.id}",
        )


def _profile_type(url: str, ctx: ValidationContext) -> str | None:
    profile = ctx.index.profiles.get(url)
    if profile is not None:
        return profile.type
    return (
        url.rsplit("/", 1)[-1]
        if url.startswith("http://hl7.org/fhir/StructureDefinition/")
        else None
    )


__all__ = ["check_element", "check_resource", "check_value", "mismatch_paths", "values_at"]
