"""The compiled forms of conformance resources (element tree nodes, constraints, profiles).

Spec: https://hl7.org/fhir/R4/elementdefinition.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhirpathpy.models import models as _fhirpath_models

FHIRPATH_R4_TYPES: dict[str, Any] = _fhirpath_models["r4"]
#: Comparisons in an expression may touch date-times, which fhirpathpy compares ignoring offsets.
ORDERING = re.compile(r"[<>]")

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


def canonical(url: str) -> str:
    """A canonical reference without its ``|version`` suffix."""
    return url.split("|", 1)[0]


__all__ = [
    "ORDERING",
    "FHIRPATH_R4_TYPES",
    "Binding",
    "CompiledFn",
    "Constraint",
    "Discriminator",
    "ElementNode",
    "Expansion",
    "Profile",
    "Slicing",
    "TypeRef",
    "canonical",
]
