"""Structural check of a mapped Bundle — one ``fhir.resources.R4B`` parse per resource.

``fhir.resources.R4B`` is imported lazily (its import costs ~1 s). ``to_fhir`` builds plain dicts;
tests and the validator call :func:`check_structure` once on the result. Pydantic error locations
become FHIRPath-style ``Issue.expression`` values.
"""

from __future__ import annotations

import importlib
from typing import Any

from fhir_iastm.errors import Issue


def _model(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _path(root: str, loc: tuple[Any, ...]) -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_resource(resource: dict[str, Any], root: str | None = None) -> list[Issue]:
    """Parse one resource with its R4B model; pydantic errors -> issues (empty = well-formed)."""
    from pydantic import ValidationError

    rtype = str(resource.get("resourceType", ""))
    root = root or rtype
    try:
        _model(rtype).model_validate(resource)
    except (ImportError, AttributeError):
        return [Issue("error", "structure", root, f"unknown resourceType {rtype!r}", "E_TYPE")]
    except ValidationError as exc:
        return [
            Issue("error", "structure", _path(root, tuple(e["loc"])), e["msg"], "E_FORMAT")
            for e in exc.errors()
        ]
    return []


def check_structure(bundle: dict[str, Any]) -> list[Issue]:
    """Each entry resource parsed once with its R4B model, plus the Bundle envelope's own fields."""
    issues: list[Issue] = []
    envelope = {k: v for k, v in bundle.items() if k != "entry"}
    issues += check_resource(envelope, "Bundle")
    for i, entry in enumerate(bundle.get("entry", ())):
        issues += check_resource(entry["resource"], f"Bundle.entry[{i}].resource")
    return issues


__all__ = ["check_resource", "check_structure"]
