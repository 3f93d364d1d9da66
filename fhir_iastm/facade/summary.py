"""``_summary`` and ``_elements`` (R4 search.html#summary, #elements): subsets of a resource.

``SUMMARY_ELEMENTS`` lists, per served type, the top-level elements the R4 StructureDefinitions
mark ``isSummary`` (``[x]`` for choice elements); ``tests/facade/test_params_source.py`` proves it
equals ``profiles-resources.xml`` of the R4 4.0.1 definitions. A subsetted resource is tagged
``SUBSETTED`` (the spec's tag, CodeSystem v3-ObservationValue).
"""

from __future__ import annotations

from typing import Any

SUMMARY_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Condition": ("id", "meta", "implicitRules", "identifier", "clinicalStatus",
                  "verificationStatus", "code", "bodySite", "subject", "encounter", "onset[x]",
                  "recordedDate", "recorder", "asserter"),
    "Encounter": ("id", "meta", "implicitRules", "identifier", "status", "class", "type",
                  "serviceType", "subject", "episodeOfCare", "participant", "appointment",
                  "reasonCode", "reasonReference", "diagnosis"),
    "Observation": ("id", "meta", "implicitRules", "identifier", "basedOn", "partOf", "status",
                    "code", "subject", "focus", "encounter", "effective[x]", "issued",
                    "performer", "value[x]", "hasMember", "derivedFrom", "component"),
    "Organization": ("id", "meta", "implicitRules", "identifier", "active", "type", "name",
                     "partOf"),
    "Patient": ("id", "meta", "implicitRules", "identifier", "active", "name", "telecom",
                "gender", "birthDate", "deceased[x]", "address", "managingOrganization", "link"),
    "Practitioner": ("id", "meta", "implicitRules", "identifier", "active", "name", "telecom",
                     "address", "gender", "birthDate"),
    "Procedure": ("id", "meta", "implicitRules", "identifier", "instantiatesCanonical",
                  "instantiatesUri", "basedOn", "partOf", "status", "statusReason", "category",
                  "code", "subject", "encounter", "performed[x]", "recorder", "asserter",
                  "performer", "location", "reasonCode", "reasonReference", "bodySite",
                  "outcome"),
}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


#: Choice elements ([x]) of the served types, by base name (``_elements=performed`` works too).
_CHOICES = frozenset({"performed", "effective", "value", "onset", "abatement", "deceased",
                      "multipleBirth"})


def _allowed(key: str, names: tuple[str, ...]) -> bool:
    if key in names:
        return True
    for name in names:
        base = name.removesuffix("[x]")
        if (name.endswith("[x]") or base in _CHOICES) and key.startswith(base) \
                and key[len(base):][:1].isupper():
            return True
    return False


def _tagged(resource: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


def subsets(summary: str | None, elements: tuple[str, ...]) -> bool:
    """Whether :func:`subset` leaves anything out of a resource with these parameters."""
    return summary in ("true", "data") or bool(elements)


def subset(resource: dict[str, Any], summary: str | None,
           elements: tuple[str, ...]) -> dict[str, Any]:
    """The resource as ``_summary`` (true | data | false) and ``_elements`` ask for it."""
    if summary == "true":
        names = SUMMARY_ELEMENTS.get(resource["resourceType"], ())
        return _tagged(resource, {k: v for k, v in resource.items()
                                  if k in _ALWAYS or _allowed(k, names)})
    if summary == "data":
        return _tagged(resource, {k: v for k, v in resource.items() if k != "text"})
    if elements:
        return _tagged(resource, {k: v for k, v in resource.items()
                                  if k in _ALWAYS or _allowed(k, elements)})
    return resource


__all__ = ["SUBSETTED", "SUMMARY_ELEMENTS", "subset", "subsets"]
