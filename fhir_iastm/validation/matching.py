"""fixed[x]/pattern[x] matching and slice discrimination (value, pattern, exists).

Spec: https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_ and
https://hl7.org/fhir/R4/profiling.html#discriminator
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from operator import eq
from typing import Any

from fhir_iastm.profiles import ElementNode, ProfileIndex
from fhir_iastm.validation.memo import by_identity

_NO_VALUE = object()


def fixed_matches(fixed: Any, value: Any) -> bool:
    """fixed[x]: exact equality (booleans never equal numbers)."""
    if isinstance(fixed, bool) or isinstance(value, bool):
        return isinstance(fixed, bool) and isinstance(value, bool) and fixed == value
    return bool(fixed == value)


def pattern_matches(pattern: Any, value: Any) -> bool:
    """pattern[x]: every property in the pattern is present with a matching value (lists: each
    pattern item matches some instance item); primitives compare exactly."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and pattern_matches(v, value[k]) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(pattern_matches(p, v) for v in items) for p in pattern)
    return fixed_matches(pattern, value)


#: ``pattern_matches(pattern, value)`` (or ``fixed_matches``) for one pattern, as a function
Matcher = Callable[[Any], bool]


def matcher(pattern: Any, exact: bool = False) -> Matcher:
    """``pattern_matches(pattern, ·)`` — with ``exact``, ``fixed_matches(pattern, ·)`` — made
    once for a pattern: the same answer for every JSON value (tests/validation/test_matching.py).
    """
    if isinstance(pattern, str):
        return partial(eq, pattern)  # a string equals no bool, number, list nor object
    if exact or not isinstance(pattern, dict | list):
        return partial(fixed_matches, pattern)
    if isinstance(pattern, list):
        return _any_each(tuple(matcher(p) for p in pattern))
    texts = tuple((k, v) for k, v in pattern.items() if isinstance(v, str))
    others = tuple((k, matcher(v)) for k, v in pattern.items() if not isinstance(v, str))
    return _all_keys(texts, others)


def _any_each(parts: tuple[Matcher, ...]) -> Matcher:
    def match(value: Any) -> bool:
        items = value if isinstance(value, list) else [value]
        for part in parts:
            for item in items:
                if part(item):
                    break
            else:
                return False
        return True

    return match


def _all_keys(
    texts: tuple[tuple[str, str], ...], others: tuple[tuple[str, Matcher], ...]
) -> Matcher:
    def match(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for key, text in texts:
            if value.get(key, _NO_VALUE) != text:
                return False
        for key, part in others:  # noqa: SIM110 - a loop, no generator per call (hot path)
            if key not in value or not part(value[key]):
                return False
        return True

    return match


def _default_discriminators(node: ElementNode) -> tuple[tuple[str, str], ...]:
    if node.slicing is not None:
        return tuple((d.type, d.path) for d in node.slicing.discriminators)
    if node.name in ("extension", "modifierExtension"):
        return (("value", "url"),)
    return ()


def _expected(slice_node: ElementNode, path: str) -> tuple[str, Any] | None:
    """What the slice requires at the discriminator path: ('fixed'|'pattern', value) or None."""
    if path == "url" and slice_node.types and slice_node.types[0].profiles:
        return ("fixed", slice_node.types[0].profiles[0])
    node: ElementNode | None = slice_node
    if path != "$this":
        for part in path.split("."):
            node = node.children.get(part) if node is not None else None
    if node is None:
        return None
    if node.fixed is not None:
        return ("fixed", node.fixed[1])
    if node.pattern is not None:
        return ("pattern", node.pattern[1])
    return None


def _values(value: Any, path: str) -> list[Any]:
    current = [value]
    if path == "$this":
        return current
    if "." not in path:  # one step (``url``, ``code``): the common discriminator
        found = value.get(path, _NO_VALUE) if isinstance(value, dict) else _NO_VALUE
        if found is _NO_VALUE:
            return []
        return found if isinstance(found, list) else [found]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict) and part in item:
                found = item[part]
                nxt.extend(found if isinstance(found, list) else [found])
        current = nxt
    return current


def _exists_expected(slice_node: ElementNode, path: str) -> bool | None:
    node: ElementNode | None = slice_node
    for part in path.split("."):
        node = node.children.get(part) if node is not None else None
    if node is None:
        return None
    if node.max == "0":
        return False
    return True if (node.min or 0) >= 1 else None


#: A slice's test, compiled: None (never matches), a choice slice's JSON key, or the
#: discriminators as ("exists", path, wanted) / ("match", path, fixed_matches or pattern_matches,
#: target, the two made one ``matcher``) steps.
SliceTest = str | tuple[tuple[Any, ...], ...] | None

_TESTS: dict[tuple[int, int], tuple[ElementNode, ElementNode, SliceTest]] = {}


def _compile_slice(node: ElementNode, slice_node: ElementNode) -> SliceTest:
    if node.name.endswith("[x]") and slice_node.slice_name:
        return slice_node.slice_name
    discriminators = _default_discriminators(node)
    if not discriminators:
        return None
    steps: list[tuple[Any, ...]] = []
    for kind, path in discriminators:
        if kind == "exists":
            want = _exists_expected(slice_node, path)
            if want is None:
                return None
            steps.append(("exists", path, want))
            continue
        expected = _expected(slice_node, path)
        if expected is None:
            return None
        how, target = expected
        match = fixed_matches if how == "fixed" and kind == "value" else pattern_matches
        steps.append(("match", path, match, target, matcher(target, match is fixed_matches)))
    return tuple(steps)


def _slice_test(node: ElementNode, slice_node: ElementNode) -> SliceTest:
    """The compiled test of one slice (once per slice; nodes do not change once compiled)."""
    found = _TESTS.get((id(node), id(slice_node)))
    if found is not None and found[0] is node and found[1] is slice_node:
        return found[2]
    test = _compile_slice(node, slice_node)
    _TESTS[(id(node), id(slice_node))] = (node, slice_node, test)
    return test


def matches_slice(node: ElementNode, slice_node: ElementNode, key: str, value: Any) -> bool:
    """True when the value satisfies every discriminator of the slice."""
    return _passes(_slice_test(node, slice_node), key, value)


def _passes(test: SliceTest, key: str, value: Any) -> bool:
    if test is None:
        return False
    if isinstance(test, str):
        return key == test
    for step in test:
        if step[0] == "exists":
            if bool(_values(value, step[1])) != step[2]:
                return False
        elif not _some(step[4], _values(value, step[1])):
            return False
    return True


def _some(match: Matcher, values: list[Any]) -> bool:
    """Some value matches (a loop, no generator per call: the hot path of slicing)."""
    for value in values:  # noqa: SIM110
        if match(value):
            return True
    return False


#: ({url: first slice name} for slicings by ``url`` value alone (extensions) or None, each
#: (slice name, its test) in order)
_Slicing = tuple[dict[str, str] | None, tuple[tuple[str, SliceTest], ...]]


def _make_slicing(node: ElementNode) -> _Slicing:
    """The slicing of ``node`` as ``slice_for`` uses it."""
    tests = tuple((name, _slice_test(node, sliced)) for name, sliced in node.slices.items())
    return _url_index(node), tests


#: :func:`_make_slicing`, made once per node
_slicing: Callable[[ElementNode], _Slicing] = by_identity(_make_slicing)


def _url_index(node: ElementNode) -> dict[str, str] | None:
    """url -> the first slice whose only discriminator is a fixed ``url``; None when some slice
    is discriminated otherwise (then every slice is tried in order)."""
    table: dict[str, str] = {}
    index: dict[str, str] | None = table
    for name, slice_node in node.slices.items():
        test = _slice_test(node, slice_node)
        if test is None:
            continue  # never matches
        if (
            isinstance(test, str)
            or len(test) != 1
            or test[0][:3] != ("match", "url", fixed_matches)
            or not isinstance(test[0][3], str)
        ):
            index = None
            break
        table.setdefault(test[0][3], name)
    return index


def slice_for(node: ElementNode, key: str, value: Any, index: ProfileIndex) -> str | None:
    """The first slice of ``node`` that the value belongs to, or None."""
    del index  # reserved for type/profile discriminators
    by_url, tests = _slicing(node)
    if by_url is not None and isinstance(value, dict):
        url = value.get("url")
        if isinstance(url, str):
            return by_url.get(url)
    for name, test in tests:
        if _passes(test, key, value):
            return name
    return None


__all__ = ["fixed_matches", "matcher", "matches_slice", "pattern_matches", "slice_for"]
