"""ValueSet expansion from local CodeSystems and ValueSets (pure).

Extensional includes, whole local CodeSystems (nested concepts
included), ``valueSet`` imports and ``exclude``; an intensional (``filter``) or unresolvable
include makes the expansion ``None`` ("cannot be checked offline", docs/decisions.md#d2).
Spec: https://hl7.org/fhir/R4/valueset.html#compositions
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_iastm.profiles.definitions import Expansion, canonical


def concept_codes(concepts: Iterable[dict[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        if isinstance(concept.get("code"), str):
            yield concept["code"]
        yield from concept_codes(concept.get("concept", []))


def _whole_system(system: str, code_systems: dict[str, dict[str, Any]]) -> set[str] | None:
    cs = code_systems.get(system)
    if cs is None or cs.get("content", "complete") != "complete":
        return None
    return set(concept_codes(cs.get("concept", [])))


def _component(
    comp: dict[str, Any],
    value_sets: dict[str, dict[str, Any]],
    code_systems: dict[str, dict[str, Any]],
    seen: frozenset[str],
) -> set[tuple[str, str]] | None:
    """The codes of one include/exclude component, or None when it cannot be computed offline."""
    if comp.get("filter"):
        return None
    system = comp.get("system")
    codes: set[tuple[str, str]] | None = None
    if system:
        if comp.get("concept"):
            codes = {(system, str(c.get("code"))) for c in comp["concept"]}
        else:
            whole = _whole_system(system, code_systems)
            if whole is None:
                return None
            codes = {(system, c) for c in whole}
    for imported in comp.get("valueSet", []):
        other = _expand(canonical(imported), value_sets, code_systems, seen)
        if other is None:
            return None
        codes = set(other) if codes is None else codes & other
    return codes if codes is not None else set()


def _expand(
    url: str,
    value_sets: dict[str, dict[str, Any]],
    code_systems: dict[str, dict[str, Any]],
    seen: frozenset[str] = frozenset(),
) -> Expansion | None:
    vs = value_sets.get(url)
    if vs is None or url in seen:
        return None
    contains = (vs.get("expansion") or {}).get("contains")
    if contains:
        return frozenset((str(c.get("system")), str(c.get("code"))) for c in contains)
    compose = vs.get("compose") or {}
    result: set[tuple[str, str]] = set()
    for inc in compose.get("include", []):
        codes = _component(inc, value_sets, code_systems, seen | {url})
        if codes is None:
            return None
        result |= codes
    for exc in compose.get("exclude", []):
        codes = _component(exc, value_sets, code_systems, seen | {url})
        if codes is None:
            return None
        result -= codes
    return frozenset(result)


def expand_value_sets(
    value_sets: dict[str, dict[str, Any]], code_systems: dict[str, dict[str, Any]]
) -> dict[str, Expansion | None]:
    """Expand every ValueSet once; None marks one that cannot be checked offline."""
    return {url: _expand(url, value_sets, code_systems) for url in value_sets}


__all__ = ["concept_codes", "expand_value_sets"]
