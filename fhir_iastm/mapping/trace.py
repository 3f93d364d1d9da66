"""Trace an issue on a mapped resource back to the record field that produced it.

Reads the element table (``mapping.elements``): the resource's kind comes from its business
identifier (docs/decisions.md#identifiers) or, for the shared resources, its type; the issue's
FHIRPath is turned into a table path (sliced items named by URL or system) and the longest row
that prefixes it names the record field. An issue on the resource root is placed by its rule: an
invariant key listed on a row, or the element id in a ``card:``/``slice:``/… rule id.
:func:`record_field` has the shape the validator accepts as its ``trace`` argument
(docs/validation.md#tracing).
"""

from __future__ import annotations

import re
from typing import Any

from fhir_iastm.mapping.elements import Element, Kind, kind_of, rows_of, slice_name

_SEGMENT = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:\[x\])?)(?:\[(\d+)\])?")


def record_field(
    resource: dict[str, Any], expression: str | None, rule: str | None = None
) -> str | None:
    """The record path behind an issue at ``expression`` (FHIRPath from the resource root)."""
    found = kind_of(resource)
    if found is None or expression is None:
        return None
    kind, groups = found
    rows = rows_of(kind.name)
    path, indexes = table_path(resource, expression)
    row = (_longest(rows, path) if path else None) or _by_rule(rows, rule)
    if row is None or not row.record:
        return _fill(kind.record, kind, groups, (), {})
    return _fill(row.record[0], kind, groups, row.index, indexes)


def table_path(resource: dict[str, Any], expression: str) -> tuple[list[str], dict[str, int]]:
    """The table path and element indices of an expression.

    ``Procedure.bodySite[0].extension[1]`` -> ``["bodySite", "extension:<name>"]``, bodySite 0.
    """
    path: list[str] = []
    indexes: dict[str, int] = {}
    node: Any = resource
    for name, index in _SEGMENT.findall(expression.partition(".")[2]):
        value = node.get(name) if isinstance(node, dict) else None
        i = int(index) if index else 0
        item = value[i] if isinstance(value, list) and i < len(value) else value
        # only resource-level identifiers are sliced; extensions and codings at any depth
        nested_identifier = name == "identifier" and bool(path)
        sliced = None if nested_identifier else slice_name(name, item)
        path.append(f"{name}:{sliced}" if sliced else name)
        if index:
            indexes.setdefault(name, i)
        node = item
    return path, indexes


def _longest(rows: tuple[Element, ...], path: list[str]) -> Element | None:
    """The row whose path is the longest prefix of ``path`` (segments compared whole).

    An item with no URL or system (so no slice name) takes the one row of its element, if one.
    """
    best: Element | None = None
    for row in rows:
        parts = row.path.split(".")
        if parts == path[: len(parts)] and (best is None or len(parts) > _depth(best)):
            best = row
    if best is None and ":" not in path[0]:
        named = [r for r in rows if r.path.split(".")[0].partition(":")[0] == path[0]]
        best = named[0] if len(named) == 1 else None
    return best


def _depth(row: Element) -> int:
    return row.path.count(".") + 1


def _by_rule(rows: tuple[Element, ...], rule: str | None) -> Element | None:
    """The row of a resource-level issue: by invariant key, else by the rule's element id."""
    if not rule:
        return None
    for row in rows:
        if rule in row.invariants:
            return row
    kind_sep, _, element_id = rule.partition(":")
    if not element_id or "." not in element_id:
        return None
    wanted = element_id.split(".")[1:]
    best: Element | None = None
    for row in rows:
        parts = row.path.split(".")
        fits = all(_same(p, w) for p, w in zip(parts, wanted, strict=False))
        if fits and len(parts) <= len(wanted) and (best is None or len(parts) > _depth(best)):
            best = row
    return best if kind_sep else None


def _same(row_segment: str, profile_segment: str) -> bool:
    """A table segment and a profile element-id segment name the same element (slices loosely)."""
    name, _, ours = row_segment.partition(":")
    pname, _, theirs = profile_segment.partition(":")
    if name != pname.removesuffix("[x]") and not name.startswith(pname.removesuffix("[x]")):
        return False
    if not theirs:
        return not ours
    ours, theirs = ours.lower(), theirs.lower()
    return (
        ours == theirs
        or ours.endswith("-" + theirs)
        or ours.startswith(theirs + "-")
        or theirs in ours.split("-")
        or ours.replace("-", "") == theirs
    )


def _fill(
    template: str, kind: Kind, groups: dict[str, str], index: tuple[str, ...], at: dict[str, int]
) -> str | None:
    """Write a record field template for one resource: keyed ``[]`` by the role, others by index."""
    variables = {**groups, "when": "start" if groups.get("timing") == "pre" else "end"}
    if kind.selector and template.startswith(kind.record):
        template = kind.selector + template[len(kind.record) :]
    parts = template.format(**variables).split("[]")
    out = parts[0]
    for name, rest in zip(index, parts[1:], strict=False):
        if name not in at:
            return out or None
        out += f"[{at[name]}]{rest}"
    return out or None




_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?$")


def bundle_record_field(bundle: dict[str, Any], expression: str | None) -> str | None:
    """The record field behind an issue a server reported on a pushed Bundle: the expression is
    ``Bundle.entry[i].resource.…`` or ``Type.…`` (placed when the Bundle has one resource of that
    type)."""
    if not expression:
        return None
    resources = [e.get("resource") or {} for e in bundle.get("entry") or []]
    match = _ENTRY.match(expression)
    if match:
        index = int(match.group(1))
        if index >= len(resources):
            return None
        resource = resources[index]
        return record_field(resource, f"{resource.get('resourceType')}.{match.group(2) or ''}")
    kind = expression.partition(".")[0]
    same = [r for r in resources if r.get("resourceType") == kind]
    return record_field(same[0], expression) if len(same) == 1 else None


__all__ = ["bundle_record_field", "record_field", "table_path"]
