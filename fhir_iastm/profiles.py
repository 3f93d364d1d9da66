"""Core: profiles/ conformance resources -> a compiled, read-only ``ProfileIndex``.

Layer: core. Imports the standard library, fhirpathpy and ``fhir_iastm.errors``; only
``load_profiles`` touches the file system (it reads the folder once).

Each StructureDefinition *differential* becomes a tree of ``ElementNode`` (children by element
name, slices by slice name) carrying cardinality, fixed[x]/pattern[x], binding, types and
slicing; every ``constraint.expression`` is compiled once with ``fhirpathpy.compile`` (R4 model).
ValueSets are expanded once: extensional includes, whole local CodeSystems (nested concepts
included), ``valueSet`` imports and ``exclude``; an intensional (``filter``) or unresolvable
include makes the expansion ``None`` ("cannot be checked offline").
Spec: https://hl7.org/fhir/R4/structuredefinition.html, https://hl7.org/fhir/R4/profiling.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.models import models as _fhirpath_models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from fhir_iastm.errors import ConfigError

R4_MODEL: dict[str, Any] = _fhirpath_models["r4"]
#: Comparisons in an expression may touch date-times, which fhirpathpy compares ignoring offsets.
_ORDERING = re.compile(r"[<>]")

CompiledFn = Callable[..., list[Any]]
#: A ValueSet expansion: the (system, code) pairs it contains.
Expansion = frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Constraint:
    """One invariant: key, severity, human text, the FHIRPath text and its compiled function."""

    key: str
    severity: str
    human: str
    expression: str
    fn: CompiledFn
    needs_utc: bool


@dataclass(frozen=True, slots=True)
class Discriminator:
    """A slicing discriminator (type value|pattern|exists|type|profile, path)."""

    type: str
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    """ElementDefinition.slicing: discriminators, rules (open|closed|openAtEnd), ordered."""

    discriminators: tuple[Discriminator, ...]
    rules: str = "open"
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class TypeRef:
    """ElementDefinition.type: code, profile and targetProfile canonicals."""

    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Binding:
    """ElementDefinition.binding (strength, value set canonical without version)."""

    strength: str
    value_set: str


@dataclass(slots=True)
class ElementNode:
    """One differential element; children by element name, slices by slice name."""

    id: str
    name: str
    slice_name: str | None = None
    min: int | None = None
    max: str | None = None
    fixed: tuple[str, Any] | None = None
    pattern: tuple[str, Any] | None = None
    binding: Binding | None = None
    types: tuple[TypeRef, ...] = ()
    slicing: Slicing | None = None
    constraints: list[Constraint] = field(default_factory=list)
    children: dict[str, ElementNode] = field(default_factory=dict)
    slices: dict[str, ElementNode] = field(default_factory=dict)

    @property
    def max_int(self) -> int | None:
        """Max as an int, None for '*' or undeclared."""
        return None if self.max in (None, "*") else int(self.max)  # type: ignore[arg-type]


@dataclass(slots=True)
class Profile:
    """A compiled StructureDefinition (resource profile or extension definition)."""

    url: str
    name: str
    type: str
    kind: str
    root: ElementNode
    source: str
    #: extension definitions: allowed contexts as (type, expression), e.g. ("element", "Procedure")
    contexts: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class ProfileIndex:
    """Everything the validator needs, compiled once; ``resources`` are the raw JSON documents."""

    profiles: dict[str, Profile]
    extensions: dict[str, Profile]
    value_sets: dict[str, Expansion | None]
    code_systems: dict[str, dict[str, Any]]
    resources: list[dict[str, Any]]
    by_type: dict[str, list[str]]
    #: codes of every local CodeSystem with content = complete (nested concepts included)
    code_sets: dict[str, frozenset[str]] = field(default_factory=dict)

    def default_profile(self, resource_type: str) -> str | None:
        """The one profile declared for a resource type, or None when there are zero or several."""
        urls = self.by_type.get(resource_type, [])
        return urls[0] if len(urls) == 1 else None

    def resource(self, resource_type: str, id_: str) -> dict[str, Any] | None:
        """The raw conformance resource with this type and id (for the service to serve)."""
        for res in self.resources:
            if res.get("resourceType") == resource_type and res.get("id") == id_:
                return res
        return None


def canonical(url: str) -> str:
    """A canonical reference without its ``|version`` suffix."""
    return url.split("|", 1)[0]


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
        fn = fhirpathpy.compile(expression, model=R4_MODEL)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a broken profile
        raise ConfigError(f"{source}: constraint {key} does not compile: {exc}") from exc
    return Constraint(
        key=key,
        severity="warning" if raw.get("severity") == "warning" else "error",
        human=str(raw.get("human", key)),
        expression=expression,
        fn=fn,
        needs_utc=bool(_ORDERING.search(expression)),
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


def parse_profiles(resources: Iterable[dict[str, Any]]) -> ProfileIndex:
    """Compile conformance resources (pure). A resource may carry ``_source`` naming its file."""
    raw = list(resources)
    profiles: dict[str, Profile] = {}
    extensions: dict[str, Profile] = {}
    by_type: dict[str, list[str]] = {}
    code_systems: dict[str, dict[str, Any]] = {}
    value_sets: dict[str, dict[str, Any]] = {}
    for res in raw:
        source = str(res.get("_source") or res.get("id") or res.get("url") or "?")
        try:
            _register(res, source, profiles, extensions, by_type)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise ConfigError(f"{source}: malformed {res.get('resourceType')}: {exc!r}") from exc
        kind = res.get("resourceType")
        if kind == "CodeSystem" and isinstance(res.get("url"), str):
            code_systems[res["url"]] = res
        elif kind == "ValueSet" and isinstance(res.get("url"), str):
            value_sets[res["url"]] = res
    return ProfileIndex(
        profiles=profiles,
        extensions=extensions,
        value_sets=expand_value_sets(value_sets, code_systems),
        code_systems=code_systems,
        resources=[{k: v for k, v in r.items() if k != "_source"} for r in raw],
        by_type=by_type,
        code_sets={
            url: frozenset(_concept_codes(cs.get("concept", [])))
            for url, cs in code_systems.items()
            if cs.get("content", "complete") == "complete"
        },
    )


def _register(
    res: dict[str, Any],
    source: str,
    profiles: dict[str, Profile],
    extensions: dict[str, Profile],
    by_type: dict[str, list[str]],
) -> None:
    """Compile a StructureDefinition into the profile or extension table."""
    if res.get("resourceType") != "StructureDefinition":
        return
    profile = parse_structure_definition(res, source)
    if profile.type == "Extension":
        extensions[profile.url] = profile
        return
    profiles[profile.url] = profile
    if profile.kind == "resource" and res.get("derivation", "constraint") == "constraint":
        by_type.setdefault(profile.type, []).append(profile.url)


def _concept_codes(concepts: Iterable[dict[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        if isinstance(concept.get("code"), str):
            yield concept["code"]
        yield from _concept_codes(concept.get("concept", []))


def _whole_system(system: str, code_systems: dict[str, dict[str, Any]]) -> set[str] | None:
    cs = code_systems.get(system)
    if cs is None or cs.get("content", "complete") != "complete":
        return None
    return set(_concept_codes(cs.get("concept", [])))


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


def load_profiles(path: str | Path) -> ProfileIndex:
    """Read every ``*.json`` of a folder once; a broken file -> ConfigError naming the file."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"profiles folder not found: {folder}")
    docs: list[dict[str, Any]] = []
    for file in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{file.name}: not readable JSON: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            raise ConfigError(f"{file.name}: not a FHIR resource (no resourceType)")
        docs.append({**doc, "_source": file.name})
    try:
        return parse_profiles(docs)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ConfigError(f"profiles in {folder}: malformed content: {exc}") from exc


__all__ = [
    "Binding",
    "Constraint",
    "Discriminator",
    "ElementNode",
    "Profile",
    "ProfileIndex",
    "Slicing",
    "TypeRef",
    "canonical",
    "compile_constraint",
    "expand_value_sets",
    "load_profiles",
    "parse_profiles",
]
