"""The receiver options' validation side (docs/clinical.md#receiver-options).

``strip_profiles`` output carries no
``meta.profile``; :func:`profile_for` names the profile each resource was built for (from its
``iastm-session-resource`` role, or its type for the shared resources), so a validator can still
check it against our profiles.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.mapping import ids
from fhir_iastm.mapping.elements import kind_of
from fhir_iastm.mapping.settings import DEFAULT_CANONICAL_BASE


def profile_for(resource: dict[str, Any], base: str = DEFAULT_CANONICAL_BASE) -> str | None:
    """Our profile URL for a mapped resource, None when it is not one we map."""
    found = kind_of(resource)
    return ids.sd(base.rstrip("/"), found[0].profile) if found else None


def claim_profiles(document: Any, base: str = DEFAULT_CANONICAL_BASE) -> Any:
    """A copy of a resource or Bundle in which every mapped resource without ``meta.profile``
    claims the profile it was built for (validating ``strip_profiles`` output)."""
    if not isinstance(document, dict):
        return document
    if document.get("resourceType") == "Bundle":
        entries = [
            {**e, "resource": claim_profiles(e["resource"], base)}
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            else e
            for e in document.get("entry") or []
        ]
        return {**document, "entry": entries}
    found = document.get("meta")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    url = profile_for(document, base)
    if url is None or meta.get("profile"):
        return document
    return {**document, "meta": {**meta, "profile": [url]}}


__all__ = ["claim_profiles", "profile_for"]
