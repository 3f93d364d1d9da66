"""StructureDefinition differential -> ``ElementNode`` tree; FHIRPath constraints compiled
once (syntax checked first: fhirpathpy's own parser silently recovers from syntax errors).

Spec: https://hl7.org/fhir/R4/profiling.html
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from fhir_iastm.errors import ConfigError
from fhir_iastm.profiles.definitions import (
    FHIRPATH_R4_TYPES,
    ORDERING,
    Binding,
    Constraint,
    Discriminator,
    ElementNode,
    Profile,
    Slicing,
    TypeRef,
    canonical,
)


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath ``hasValue()`` (not in fhirpathpy): a single primitive that has a value."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)]


def html_checks(inputs: list[Any]) -> list[bool]:
    """FHIR's ``htmlChecks()`` (txt-1, txt-2; not in fhirpathpy): well-formed XHTML whose root is
    an xhtml ``div``, without scripts, with some non-whitespace text or an image."""
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return [False]
    if "<!DOCTYPE" in inputs[0].upper() or "<!ENTITY" in inputs[0].upper():
        return [False]  # no DTDs in a narrative (and no entity expansion while checking it)
    try:
        root = ElementTree.fromstring(inputs[0])
    except ElementTree.ParseError:
        return [False]
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    return [
        root.tag == f"{{{XHTML}}}div"
        and not tags & {"script", "form", "iframe", "object", "applet", "embed"}
        and ("img" in tags or bool("".join(root.itertext()).strip()))
    ]


XHTML = "http://www.w3.org/1999/xhtml"
#: Functions of FHIR's FHIRPath that fhirpathpy lacks (https://hl7.org/fhir/R4/fhirpath.html).
#: ``trace()`` (used by core invariants such as ref-1, dom-3) is silenced: no printing to stdout.
FHIRPATH_OPTIONS = {
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "htmlChecks": {"fn": html_checks, "arity": {0: []}},
    },
    "traceFn": lambda *_args: None,
}


class _RaisingListener(ErrorListener):  # type: ignore[misc]
    def syntaxError(  # noqa: N802 - antlr4 API name
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise ValueError(f"syntax error at column {column}: {msg}")


def check_syntax(expression: str) -> None:
    """Raise ValueError for FHIRPath text that does not parse completely (fhirpathpy's own
    parser silently recovers from syntax errors)."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_RaisingListener())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_RaisingListener())
    parser.expression()
    if parser.getCurrentToken().type != Token.EOF:
        raise ValueError(f"unexpected text at column {parser.getCurrentToken().column}")


def compile_constraint(raw: dict[str, Any], source: str) -> Constraint:
    """Compile one ``constraint`` element; a parse failure is a ConfigError naming the source."""
    key = str(raw.get("key", "?"))
    expression = raw.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError(f"{source}: constraint {key} has no expression")
    try:
        check_syntax(expression)
        fn = fhirpathpy.compile(expression, model=FHIRPATH_R4_TYPES, options=FHIRPATH_OPTIONS)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a broken profile
        raise ConfigError(f"{source}: constraint {key} does not compile: {exc}") from exc
    return Constraint(
        key=key,
        severity="warning" if raw.get("severity") == "warning" else "error",
        human=str(raw.get("human", key)),
        expression=expression,
        fn=fn,
        needs_utc=bool(ORDERING.search(expression)),
    )


def _typed_value(element: dict[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix) :], value
    return None


def _slicing(raw: dict[str, Any] | None) -> Slicing | None:
    if not raw:
        return None
    discs = tuple(
        Discriminator(str(d.get("type", "value")), str(d.get("path", "$this")))
        for d in raw.get("discriminator", [])
    )
    return Slicing(discs, str(raw.get("rules", "open")), bool(raw.get("ordered", False)))


def _fill_node(node: ElementNode, element: dict[str, Any], source: str) -> None:
    node.min = element.get("min", node.min)
    node.max = element.get("max", node.max)
    if node.min is not None and (not isinstance(node.min, int) or node.min < 0):
        raise ValueError(f"{node.id}: min {node.min!r} is not a non-negative integer")
    if node.max is not None and not (node.max == "*" or str(node.max).isdigit()):
        raise ValueError(f"{node.id}: max {node.max!r} is neither '*' nor an integer")
    node.fixed = _typed_value(element, "fixed") or node.fixed
    node.pattern = _typed_value(element, "pattern") or node.pattern
    binding = element.get("binding")
    if binding and binding.get("valueSet"):
        node.binding = Binding(
            str(binding.get("strength", "example")), canonical(binding["valueSet"])
        )
    if "type" in element:
        node.types = tuple(
            TypeRef(
                str(t.get("code", "")),
                tuple(canonical(p) for p in t.get("profile", [])),
                tuple(canonical(p) for p in t.get("targetProfile", [])),
            )
            for t in element["type"]
        )
    node.slicing = _slicing(element.get("slicing")) or node.slicing
    node.constraints.extend(compile_constraint(c, source) for c in element.get("constraint", []))


def _split_id(element_id: str) -> list[tuple[str, str | None]]:
    """``Procedure.extension:tech.value[x]`` -> [(Procedure, None), (extension, tech), …]."""
    out: list[tuple[str, str | None]] = []
    for part in re.split(r"\.(?![^\[]*\])", element_id):
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def build_tree(elements: list[dict[str, Any]], source: str) -> ElementNode:
    """Differential elements -> tree rooted at the type element."""
    if not elements:
        raise ConfigError(f"{source}: differential has no elements")
    root_name = str(elements[0].get("id") or elements[0].get("path", "")).split(".")[0]
    root = ElementNode(id=root_name, name=root_name)
    for element in elements:
        element_id = element.get("id") or element.get("path")
        if not isinstance(element_id, str):
            raise ConfigError(f"{source}: differential element without id/path")
        if "sliceName" in element and ":" not in element_id.rsplit(".", 1)[-1]:
            element_id = f"{element_id}:{element['sliceName']}"
        node = root
        parts = _split_id(element_id)
        if parts[0][0] != root_name:
            raise ConfigError(f"{source}: element {element_id} is outside {root_name}")
        built = root_name
        for name, slice_name in parts[1:]:
            built = f"{built}.{name}"
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = ElementNode(id=built, name=name)
            node = child
            if slice_name:
                built = f"{built}:{slice_name}"
                sliced = node.slices.get(slice_name)
                if sliced is None:
                    sliced = node.slices[slice_name] = ElementNode(built, name, slice_name)
                node = sliced
        _fill_node(node, element, source)
    return root


def parse_structure_definition(sd: dict[str, Any], source: str) -> Profile:
    """Compile one StructureDefinition (its differential)."""
    url = sd.get("url")
    if not isinstance(url, str):
        raise ConfigError(f"{source}: StructureDefinition without url")
    elements = (sd.get("differential") or {}).get("element") or []
    root = build_tree(elements, source) if elements else ElementNode(str(sd.get("type")), "")
    return Profile(
        url=url,
        name=str(sd.get("name", url)),
        type=str(sd.get("type", "")),
        kind=str(sd.get("kind", "resource")),
        root=root,
        source=source,
        contexts=tuple(
            (str(c.get("type", "element")), str(c.get("expression", "")))
            for c in sd.get("context") or []
        ),
    )


__all__ = ["build_tree", "check_syntax", "compile_constraint", "parse_structure_definition"]
