"""CORE: offline FHIR R4 profile validation against the ``profiles/`` index.

Imports the standard library, ``fhir.resources.R4B`` (structure), fhirpathpy (invariants, compiled
once in ``fhir_iastm.profiles``), ``fhir_iastm.profiles`` and ``fhir_iastm.errors``; never the
mapping; no I/O.

``validate(resource_or_bundle, index, *, profile=None, structure=True, trace=None)``.
Issue fields: ``severity`` (error/warning/information), ``code`` (FHIR IssueType),
``expression`` (FHIRPath, ``Bundle.entry[i].resource.`` prefixed inside Bundles),
``diagnostics`` (human text), ``details`` (the rule id) and ``record_field`` (the internal
record field, filled by ``trace`` — ``fhir_iastm.mapping.trace.record_field`` for resources we
mapped; validation does not import the mapping, docs/validation.md#tracing).

Rule-id scheme (``Issue.details``):

==============================  ==========================================================
``card:<element id>``           min/max of an element (``card:Procedure.code``)
``slice:<slice element id>``    min/max of a slice or an extension slice
                                (``slice:Observation.category:survey``)
``slicing:<element id>``        value matching no slice of a *closed* slicing
``fixed:<element id>``          fixed[x] mismatch; ``pattern:<element id>`` pattern[x]
``binding:<element id>``        code not in the bound ValueSet (required → error,
                                extensible → warning), or ValueSet not checkable offline
                                (warning, code ``not-supported``)
``codesystem:<system>``         code not defined in a complete local CodeSystem
``type:<element id>``           choice type not allowed; ``target:<element id>`` reference
                                target of the wrong type/profile
``<constraint key>``            a FHIRPath invariant (``iastm-proc-4``, ``con-5``, ``per-1``,
                                ``ext-1``, ``bdl-3``, ``bdl-7`` …)
``structure:<pydantic type>``   fhir.resources structural error
``unknown-profile``             meta.profile (or ``--profile``) not in the index
``profile-type``                profile constrains another resource type
``no-profile``                  (information) no profile for the type: base checks only
``extension:<url>``             (warning) extension without a definition here
``context:<url>``               extension used where its definition's context forbids it
``ref:unresolved``/``ref:type`` urn: reference not in the Bundle / Reference.type mismatch
``internal``                    (fatal) the validator itself failed — a bug, never a crash
==============================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import ProfileIndex
from fhir_iastm.validation.bundle import validate_bundle
from fhir_iastm.validation.context import Tracer
from fhir_iastm.validation.engine import validate_resource


def validate(
    resource_or_bundle: Any,
    index: ProfileIndex,
    *,
    profile: str | None = None,
    structure: bool = True,
    trace: Tracer | None = None,
) -> list[Issue]:
    """Validate a resource or a Bundle; ``structure=False`` skips the fhir.resources parse (only
    for resources built through fhir.resources models, e.g. the mapper's output); ``trace``
    names the record field behind each issue."""
    if not isinstance(resource_or_bundle, dict):
        return [
            Issue(
                "error", "structure", None, "input is not a JSON object", "structure:resourceType"
            )
        ]
    try:
        if resource_or_bundle.get("resourceType") == "Bundle" and profile is None:
            return validate_bundle(resource_or_bundle, index, structure=structure, trace=trace)
        return validate_resource(
            resource_or_bundle, index, profile=profile, structure=structure, trace=trace
        )
    except Exception as exc:  # noqa: BLE001 - module boundary: report, never crash
        return [
            Issue(
                "fatal",
                "exception",
                None,
                f"validator failure: {type(exc).__name__}: {exc}",
                "internal",
            )
        ]


__all__ = ["Tracer", "validate"]
