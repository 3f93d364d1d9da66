"""The profile-upload use case: PUT every conformance resource of profiles/ to a FHIR server, so
its ``$validate`` checks our profiles (docs/decisions.md#d1; docs/validation.md#oracle).
``fhir_iastm.service`` re-exports it.

* :func:`conformance_resources` — the conformance resources of profiles/, in upload order.
* :func:`upload_profiles` — upload those a validating server can use (not
  :data:`NOT_FOR_SERVERS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fhir_iastm.client import FhirClient
from fhir_iastm.profiles import ProfileIndex, load_profiles

#: Upload order: what a StructureDefinition or ValueSet refers to goes first.
_UPLOAD_ORDER = {"CodeSystem": 0, "ValueSet": 1, "StructureDefinition": 2, "ConceptMap": 3}


#: Resources of profiles/ a validating server cannot use (profiles/README.md, "Loading into
#: HAPI"): the intensional SNOMED CT ValueSets of the mCODE body-location qualifier. A server
#: without SNOMED CT content cannot expand their ``descendent-of`` filters and reports an *error*
#: for every qualifier; without them it reports the *warning* "ValueSet not found", which is what
#: the project's validation rules ask for (the qualifier is checked by our own invariants).
#: And the sandbox run tags' CodeSystem (``content: not-present``): no profile binds to it, and
#: HAPI 8.8 refuses to store it again under another canonical base (HTTP 409, a unique-index
#: violation in its terminology tables), which broke a second ``load-profiles``.
NOT_FOR_SERVERS = frozenset(
    {
        "ValueSet/mcode-body-location-qualifier-vs",
        "ValueSet/mcode-body-location-and-laterality-qualifier-vs",
        "CodeSystem/iastm-sandbox-run",
    }
)


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id')}"


def conformance_resources(
    source: ProfileIndex | str | Path,
    canonical_base: str | None = None,
    *,
    for_server: bool = False,
) -> list[dict[str, Any]]:
    """The conformance resources of a ProfileIndex (already rebased) or of a profiles/ folder
    rebased to ``canonical_base``, in upload order; ``for_server`` leaves out
    :data:`NOT_FOR_SERVERS`."""
    index = source if isinstance(source, ProfileIndex) else load_profiles(source, canonical_base)
    resources = [
        {k: v for k, v in doc.items() if not k.startswith("_")}
        for doc in index.resources
        if doc.get("resourceType") in _UPLOAD_ORDER
    ]
    if for_server:
        resources = [r for r in resources if _key(r) not in NOT_FOR_SERVERS]
    return sorted(resources, key=lambda r: (_UPLOAD_ORDER[r["resourceType"]], str(r.get("id"))))


def upload_profiles(
    client: FhirClient, source: ProfileIndex | str | Path, canonical_base: str | None = None
) -> list[str]:
    """PUT every profiles/ resource a validating server can use (``Type/id``) to the server;
    returns what was written."""
    written = []
    for resource in conformance_resources(source, canonical_base, for_server=True):
        client.post_conformance(resource)
        written.append(_key(resource))
    return written


__all__ = ["NOT_FOR_SERVERS", "conformance_resources", "upload_profiles"]
