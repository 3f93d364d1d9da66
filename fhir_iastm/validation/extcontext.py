"""Is an extension used where its definition allows it (StructureDefinition.context)?

The owner of an extension at
``Procedure.complication[0].extension[2].valueCodeableConcept.extension[0]`` is the element
``Extension.valueCodeableConcept`` of type CodeableConcept; an ``element`` context matches the
owner's element path (``Procedure.bodySite``), its type (``CodeableConcept``), ``Element``,
``Resource``/``DomainResource``/the resource type at the root, or ``Extension``; an ``extension``
context names the parent extension's URL; ``fhirpath`` contexts are not evaluated (accepted). Rule
id ``context:<url>``. Spec: https://hl7.org/fhir/R4/defining-extensions.html#context
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir_iastm.profiles import FHIRPATH_R4_TYPES, Profile

_INDEX = re.compile(r"\[\d+\]")
_PATH2TYPE: dict[str, str] = FHIRPATH_R4_TYPES["path2Type"]
_CHOICES: dict[str, list[str]] = FHIRPATH_R4_TYPES["choiceTypePaths"]


@lru_cache(maxsize=4096)
def owner_of(path: str) -> tuple[str, str, bool]:
    """(element path, type, is resource root) of the element that holds the extension at path
    (a pure function of the path: the same places recur in every resource of a kind)."""
    steps = _INDEX.sub("", path).split(".")[:-1]
    type_path = element = steps[0]
    for step in steps[1:]:
        element = f"{type_path}.{step}"
        found = _PATH2TYPE.get(element) or _choice_type(type_path, step)
        type_path = (
            found if found and found[0].isupper() and found != "BackboneElement" else element
        )
    return element, type_path, len(steps) == 1


def _choice_type(type_path: str, key: str) -> str | None:
    for n in range(len(key) - 1, 0, -1):
        types = _CHOICES.get(f"{type_path}.{key[:n]}")
        if types is not None:
            suffix = key[n:]
            return suffix if suffix in types else None
    return None


def allowed(definition: Profile, path: str, resource: dict[str, Any]) -> bool:
    """True when one of the definition's contexts admits the extension at ``path`` of
    ``resource`` (its parent extension's URL looked up only for an ``extension`` context)."""
    if not definition.contexts:
        return True
    element, type_name, root = owner_of(path)
    names = {element, type_name, "Element", "Base"}
    if root:
        names |= {"Resource", "DomainResource"}
    for kind, expression in definition.contexts:
        if kind == "fhirpath" or (
            kind == "extension" and expression == parent_extension_url(resource, path)
        ):
            return True
        if kind == "element" and expression in names:
            return True
    return False


def parent_extension_url(resource: dict[str, Any], path: str) -> str | None:
    """The URL of the extension that directly holds a nested extension, if any."""
    parts = path.split(".")[1:-1]
    if not parts or not parts[-1].startswith("extension["):
        return None
    node: Any = resource
    for part in parts:
        name, _, index = part.partition("[")
        node = node.get(name) if isinstance(node, dict) else None
        if index and isinstance(node, list):
            position = int(index.rstrip("]"))
            node = node[position] if position < len(node) else None
    return node.get("url") if isinstance(node, dict) else None


__all__ = ["allowed", "owner_of", "parent_extension_url"]
