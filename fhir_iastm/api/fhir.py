"""Edge (Flask): the FHIR R4 facade under ``/fhir`` for EHRs that pull.

``metadata`` (CapabilityStatement), read ``/<type>/<id>``, search on Procedure, Condition,
Observation, Patient (``patient``/``subject``, ``date``, ``code``, ``identifier``, ``_count``,
``_offset`` with ``next`` links), ``POST /<type>/$validate`` (our validator), and the conformance
resources of ``profiles/``. Everything is ``application/fhir+json``; every error is an
OperationOutcome.
Spec: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import BadRequest, NotFound

from fhir_iastm import __version__
from fhir_iastm.api.errors import fhir_response
from fhir_iastm.api.sessions import json_body
from fhir_iastm.errors import operation_outcome
from fhir_iastm.facade import SEARCHES, patient_reference, split_date_param
from fhir_iastm.mapping.trace import record_field
from fhir_iastm.validation import validate

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

SEARCHABLE = {
    "Procedure": ("patient", "subject", "date", "code", "identifier"),
    "Condition": ("patient", "subject", "date", "code", "identifier"),
    "Observation": ("patient", "subject", "date", "code", "identifier"),
    "Patient": ("identifier",),
}
READABLE = ("Procedure", "Condition", "Observation", "Patient", "Practitioner", "Organization",
            "Encounter")
CONFORMANCE = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap")
PAGING = ("_count", "_offset", "_format")
MAX_COUNT = 500


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


@bp.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement: our profiles, interactions and search parameters."""
    profiles = _state().profiles
    resources = []
    for rtype in READABLE:
        entry: dict[str, Any] = {"type": rtype, "interaction": [{"code": "read"}]}
        supported = profiles.by_type.get(rtype, [])
        if supported:
            entry["supportedProfile"] = sorted(supported)
        if rtype in SEARCHABLE:
            entry["interaction"].append({"code": "search-type"})
            entry["searchParam"] = [
                {"name": name, "type": "date" if name == "date" else
                 "reference" if name in ("patient", "subject") else "token"}
                for name in SEARCHABLE[rtype]
            ]
        entry["operation"] = [{"name": "validate",
                               "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}]
        resources.append(entry)
    resources += [{"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}]}
                  for t in CONFORMANCE]
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "kind": "instance",
        "software": {"name": "fhir-iastm", "version": __version__},
        "implementation": {"description": "fhir-iastm FHIR facade",
                           "url": request.url_root + "fhir"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
    return fhir_response(body)


def _count() -> tuple[int, int]:
    try:
        count = int(request.args.get("_count", 50))
        offset = int(request.args.get("_offset", 0))
    except ValueError as exc:
        raise BadRequest("_count and _offset must be integers") from exc
    if not 0 <= count <= MAX_COUNT or offset < 0:
        raise BadRequest(f"_count must be 0..{MAX_COUNT} and _offset ≥ 0")
    return count, offset


def _filters(rtype: str) -> list[tuple[str, str]]:
    allowed = SEARCHABLE[rtype]
    filters = []
    for name, value in request.args.items(multi=True):
        if name in PAGING:
            continue
        if name not in allowed:
            raise BadRequest(f"unsupported search parameter '{name}' for {rtype}; "
                             f"supported: {', '.join(allowed)}")
        if name == "date":
            try:
                split_date_param(value)
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
        filters.append((name, value))
    return filters


def _subject(rtype: str, filters: list[tuple[str, str]]) -> str | None:
    """The reference of the first patient/subject filter: the facade's index narrows the
    candidates by it, and every filter (that one included) is still applied to each candidate."""
    if rtype == "Patient":
        return None
    return next((patient_reference(v) for n, v in filters if n in ("patient", "subject")), None)


def _search(rtype: str) -> Response:
    filters = _filters(rtype)
    count, offset = _count()
    hits = list(_state().facade.of_type(rtype, _subject(rtype, filters)))
    if filters:
        hits = [r for r in hits if all(SEARCHES[name](r, value) for name, value in filters)]
    page = hits[offset: offset + count]
    base = request.url_root.rstrip("/")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(hits),
        "link": [{"relation": "self", "url": request.url}],
        "entry": [{"fullUrl": f"{base}/fhir/{rtype}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in page],
    }
    if offset + count < len(hits) and count > 0:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "_offset"]
        args.append(("_offset", str(offset + count)))
        query = "&".join(f"{k}={v}" for k, v in args)
        bundle["link"].append({"relation": "next",
                               "url": f"{base}{url_for('fhir.search', rtype=rtype)}?{query}"})
    return fhir_response(bundle)


@bp.get("/<rtype>")
def search(rtype: str) -> Response:
    """Search Procedure | Condition | Observation | Patient, or list our conformance resources."""
    if rtype in CONFORMANCE:
        found = [r for r in _state().profiles.resources if r.get("resourceType") == rtype]
        return fhir_response({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                              "entry": [{"resource": r} for r in found]})
    if rtype not in SEARCHABLE:
        raise NotFound(f"search is not supported on '{rtype}'")
    return _search(rtype)


@bp.get("/<rtype>/<rid>")
def read(rtype: str, rid: str) -> Response:
    """Read one resource by logical id."""
    state = _state()
    if rtype in CONFORMANCE:
        found = state.profiles.resource(rtype, rid)
    elif rtype in READABLE:
        found = state.facade.read(rtype, rid)
    else:
        raise NotFound(f"resource type '{rtype}' is not served here")
    if found is None:
        raise NotFound(f"{rtype}/{rid} is not known")
    return fhir_response(found)


def _resource_from_body(rtype: str) -> dict[str, Any]:
    body = json_body()
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in body.get("parameter") or []:
            if param.get("name") == "resource" and isinstance(param.get("resource"), dict):
                return param["resource"]
        raise BadRequest("Parameters carries no 'resource' parameter")
    if not isinstance(body, dict) or body.get("resourceType") != rtype:
        raise BadRequest(f"the body must be a {rtype} resource (or Parameters with one)")
    return body


@bp.post("/<rtype>/$validate")
def validate_resource(rtype: str) -> Response:
    """``$validate`` against our profiles: 200 with an OperationOutcome (errors are issues)."""
    resource = _resource_from_body(rtype)
    profile = request.args.get("profile")
    issues = validate(resource, _state().profiles, profile=profile, trace=record_field)
    return fhir_response(operation_outcome(issues))


__all__ = ["bp"]
