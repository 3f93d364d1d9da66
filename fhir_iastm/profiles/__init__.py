"""CORE: profiles/ conformance resources -> a compiled, read-only ``ProfileIndex``.

Imports the standard library, fhirpathpy, ``fhir_iastm.errors`` and ``fhir_iastm.canonical``;
only ``load_profiles`` touches the file system (it reads the folder once).

The resources are written under the default canonical base; ``parse_profiles`` and
``load_profiles`` move every project URL to the configured base first (``canonical.rebase``, the
same base the mapper builds its URLs from — docs/canonical-base.md), so the index, the resources it
serves and uploads, and the validator all speak of the configured URLs.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE, normalize_base, rebase
from fhir_iastm.errors import ConfigError
from fhir_iastm.profiles.compile import (
    build_tree,
    check_syntax,
    compile_constraint,
    parse_structure_definition,
)
from fhir_iastm.profiles.definitions import (
    FHIRPATH_R4_TYPES,
    Binding,
    Constraint,
    Discriminator,
    ElementNode,
    Expansion,
    Profile,
    Slicing,
    TypeRef,
    canonical,
)
from fhir_iastm.profiles.valuesets import concept_codes, expand_value_sets


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
    #: the base every project URL of the index is under (docs/canonical-base.md)
    canonical_base: str = DEFAULT_CANONICAL_BASE

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


def parse_profiles(
    resources: Iterable[dict[str, Any]], canonical_base: str | None = None
) -> ProfileIndex:
    """Compile conformance resources (pure), rebased to ``canonical_base`` (None: the default).

    A resource may carry ``_source`` naming its file.
    """
    raw = rebase(list(resources), canonical_base)
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
            url: frozenset(concept_codes(cs.get("concept", [])))
            for url, cs in code_systems.items()
            if cs.get("content", "complete") == "complete"
        },
        canonical_base=normalize_base(canonical_base),
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


def load_profiles(path: str | Path, canonical_base: str | None = None) -> ProfileIndex:
    """Read every ``*.json`` of a folder once, rebased to ``canonical_base`` (None: the default).

    A broken file -> ConfigError naming the file.
    """
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
        return parse_profiles(docs, canonical_base)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ConfigError(f"profiles in {folder}: malformed content: {exc}") from exc


__all__ = [
    "FHIRPATH_R4_TYPES",
    "Binding",
    "Constraint",
    "Discriminator",
    "ElementNode",
    "Expansion",
    "Profile",
    "ProfileIndex",
    "Slicing",
    "TypeRef",
    "build_tree",
    "canonical",
    "check_syntax",
    "compile_constraint",
    "expand_value_sets",
    "load_profiles",
    "parse_profiles",
    "parse_structure_definition",
]
