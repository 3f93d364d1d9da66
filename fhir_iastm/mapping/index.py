"""An index over the resources handed to the reverse mapper (transaction Bundle, searchset
Bundle with server ids, or a plain list) that resolves literal references of any of those forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.datatypes import Json


def _ref_keys(full_url: object, resource: Json) -> list[str]:
    keys = [full_url] if isinstance(full_url, str) and full_url else []
    rid, rtype = resource.get("id"), resource.get("resourceType")
    if isinstance(rid, str) and rid and isinstance(rtype, str):
        keys.append(f"{rtype}/{rid}")
    return keys


def _normal(ref: str) -> str:
    """``http://x/fhir/Patient/1/_history/2`` -> ``Patient/1``; urn:uuid refs unchanged."""
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


@dataclass
class Index:
    """The resources, in input order, and a reference -> resource map."""

    resources: list[Json] = field(default_factory=list)
    #: FHIRPath of each resource in the input (``Bundle.entry[3].resource``), for error reports.
    roots: list[str] = field(default_factory=list)
    by_ref: dict[str, Json] = field(default_factory=dict)

    @classmethod
    def build(cls, data: Any) -> Index:
        """Accept a Bundle (any type) or a list of resources."""
        index = cls()
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":
            entries = data.get("entry") or []
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    index.add(
                        entry["resource"], entry.get("fullUrl"), f"Bundle.entry[{i}].resource"
                    )
        elif isinstance(data, list):
            for item in data:
                if isinstance(item, dict) and item.get("resourceType"):
                    index.add(item, None, str(item["resourceType"]))
        else:
            raise MappingError(
                "expected a Bundle or a list of resources",
                [
                    Issue(
                        "error",
                        "structure",
                        None,
                        "expected a FHIR Bundle or a JSON array of resources",
                        "E_TYPE",
                    )
                ],
            )
        return index

    def add(self, resource: Json, full_url: object, root: str) -> None:
        self.resources.append(resource)
        self.roots.append(root)
        for key in _ref_keys(full_url, resource):
            self.by_ref[key] = resource
            self.by_ref.setdefault(_normal(key), resource)

    def add_alias(self, key: str, resource: Json) -> None:
        """Register one more reference key (never overriding an existing one)."""
        self.by_ref.setdefault(key, resource)

    def resolve(self, reference: Json | None) -> Json | None:
        """The resource a Reference points to, or None."""
        ref = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(ref, str) or not ref:
            return None
        return self.by_ref.get(ref) or self.by_ref.get(_normal(ref))

    def of_type(self, resource_type: str) -> list[Json]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]

    def one(self, reference: Json | None, resource_type: str, where: str) -> Json:
        """Resolve ``reference``; else the only resource of that type; else E_REQUIRED."""
        found = self.resolve(reference)
        if found is not None and found.get("resourceType") == resource_type:
            return found
        candidates = self.of_type(resource_type)
        if len(candidates) == 1:
            return candidates[0]
        raise MappingError(
            f"{where}: cannot find the {resource_type}",
            [
                Issue(
                    "error",
                    "required",
                    where,
                    f"the referenced {resource_type} is not in the input "
                    f"({len(candidates)} candidates)",
                    "E_REQUIRED",
                )
            ],
        )


__all__ = ["Index"]
