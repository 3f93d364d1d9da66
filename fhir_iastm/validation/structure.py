"""Structural validation by one ``fhir.resources.R4B`` parse; pydantic errors -> FHIRPath.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_iastm.errors import Issue

#: pydantic error type -> FHIR IssueType.
_ISSUE_TYPE = {
    "missing": "required",
    "extra_forbidden": "structure",
    "value_error": "value",
}


@cache
def model_class(resource_type: str) -> Any:
    """The R4B model class for a resource type, or None when fhir.resources has none."""
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None


def fhirpath_of(resource_type: str, loc: tuple[Any, ...]) -> str:
    """pydantic ``loc`` -> FHIRPath: ('bodySite', 0, 'coding') -> Procedure.bodySite[0].coding."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        elif isinstance(part, str) and not part.startswith("function-"):
            path += f".{part}"
    return path


def check_structure(resource: dict[str, Any]) -> list[Issue]:
    """Parse once with fhir.resources R4B; each pydantic error becomes an error Issue."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [
            Issue("error", "structure", None, "resourceType is missing", "structure:resourceType")
        ]
    cls = model_class(resource_type)
    if cls is None:
        return [
            Issue(
                "error",
                "structure",
                resource_type,
                f"unknown resource type {resource_type!r}",
                "structure:resourceType",
            )
        ]
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        return [_issue(resource_type, err) for err in exc.errors()]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # fhir.resources raises these for shapes pydantic does not catch (e.g. an unknown
        # resourceType inside ``contained``)
        return [Issue("error", "structure", resource_type, str(exc), "structure")]
    return []


def _issue(resource_type: str, err: Any) -> Issue:
    kind = str(err.get("type", "structure"))
    message = str(err.get("msg", "invalid"))
    return Issue(
        "error",
        _ISSUE_TYPE.get(kind, "structure"),
        fhirpath_of(resource_type, tuple(err.get("loc", ()))),
        message,
        f"structure:{kind}",
    )


__all__ = ["check_structure", "fhirpath_of", "model_class"]
