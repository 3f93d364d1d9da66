"""The FHIR R4 facade under ``/fhir`` for EHRs that pull — thin views.

``metadata``; read ``/<type>/<id>``, vread ``/<type>/<id>/_history/<vid>``, instance history
``/<type>/<id>/_history``; search ``/<type>?…`` (parsed by ``facade.parse``, answered by
``Store.search`` in SQL, rendered by ``facade.bundle``); ``POST /<type>/$validate``; the
conformance resources of ``profiles/``. Everything is ``application/fhir+json``; every error is
an OperationOutcome. Spec: https://hl7.org/fhir/R4/http.html, https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import BadRequest, NotFound

from fhir_iastm.api.auth import require
from fhir_iastm.api.body import json_body
from fhir_iastm.api.fhir_http import (
    fhir_base,
    ignored_outcome,
    negotiate,
    not_modified,
    pretty,
    respond,
    respond_text,
    strict,
    version_headers,
)
from fhir_iastm.errors import GoneError, operation_outcome
from fhir_iastm.facade.audit import concerned, patient_references
from fhir_iastm.facade.bundle import history, searchset, searchset_json, with_meta
from fhir_iastm.facade.capability import CONFORMANCE_TYPES, capability_statement
from fhir_iastm.facade.params import RESOURCE_TYPES
from fhir_iastm.facade.parse import SearchError, parse_search
from fhir_iastm.mapping.trace import record_field
from fhir_iastm.storage import StoredResource
from fhir_iastm.validation import validate

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
#: Parameters of the conformance resources' search (besides _format / _pretty).
CONFORMANCE_PARAMS = ("url", "version", "name", "_id")
MAX_HISTORY = 100


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


bp.before_request(negotiate)


@bp.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement: exactly what this facade implements."""
    state = _state()
    profiles = {t: list(state.profiles.by_type.get(t, [])) for t in RESOURCE_TYPES}
    secured = bool(state.settings.api_tokens) or state.settings.smart_auth
    return respond(capability_statement(fhir_base(), profiles, secured,
                                        smart=state.settings.smart_auth))


def _served(rtype: str) -> None:
    if rtype not in RESOURCE_TYPES:
        raise NotFound(f"resource type '{rtype}' is not served here")


@bp.get("/<rtype>")
def search(rtype: str) -> Response:
    """Search a served type, or list conformance resources by url / version / name / _id."""
    if rtype in CONFORMANCE_TYPES:
        return _conformance_search(rtype)
    _served(rtype)
    require(rtype, "s")
    state = _state()
    args = list(request.args.items(multi=True))
    base = fhir_base()
    parsed = parse_search(rtype, args, base, state.settings.page_size)
    if parsed.ignored and strict():
        raise SearchError(parsed.ignored[0], f"is not a supported search parameter of {rtype}")
    result = state.store.search(parsed.query)
    g.audit_patients = concerned((*result.matches, *result.included))
    outcome = None
    if parsed.ignored:
        outcome = ignored_outcome(parsed.ignored, state.settings.canonical_base)
    if pretty():
        return respond(searchset(base, parsed, result, args, outcome))
    return respond_text(searchset_json(base, parsed, result, args, outcome))


def _conformance_search(rtype: str) -> Response:
    unknown = [k for k in request.args if k not in (*CONFORMANCE_PARAMS, "_format", "_pretty")]
    if unknown and strict():
        raise SearchError(unknown[0], f"is not a supported search parameter of {rtype}")
    wanted = {k: set(request.args.getlist(k)) for k in CONFORMANCE_PARAMS if k in request.args}
    found = [r for r in _state().profiles.resources if r.get("resourceType") == rtype
             and all(str(r.get("id" if k == "_id" else k)) in v for k, v in wanted.items())]
    base = fhir_base()
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{rtype}/{r['id']}", "resource": _public(r),
         "search": {"mode": "match"}} for r in found]
    if unknown:
        outcome = ignored_outcome(unknown, _state().settings.canonical_base)
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    return respond({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                    "link": [{"relation": "self", "url": request.url}], "entry": entries})


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def _current(rtype: str, rid: str, version: int | None = None) -> StoredResource:
    _served(rtype)
    require(rtype, "r")
    stored = _state().store.read_resource(rtype, rid, version)
    if stored is None:
        what = f"version {version} of {rtype}/{rid}" if version else f"{rtype}/{rid}"
        raise NotFound(f"{what} is not known")
    if stored.gone:
        raise GoneError(f"{rtype}/{rid} was retracted by a newer record version (version "
                        f"{stored.version}); its history remains readable")
    return stored


def _versioned(stored: StoredResource) -> Response:
    g.audit_references = (f"{stored.resource_type}/{stored.resource_id}/_history/"
                          f"{stored.version}",)
    g.audit_patients = patient_references([stored.body])
    headers = version_headers(stored)
    if not_modified(stored):
        return Response(status=304, headers=headers)
    return respond(with_meta(stored), headers=headers)


@bp.get("/<rtype>/<rid>")
def read(rtype: str, rid: str) -> Response:
    """Read one resource (or a conformance resource) by logical id."""
    if rtype in CONFORMANCE_TYPES:
        found = _state().profiles.resource(rtype, rid)
        if found is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        return respond(_public(found))
    return _versioned(_current(rtype, rid))


@bp.get("/<rtype>/<rid>/_history/<vid>")
def vread(rtype: str, rid: str, vid: str) -> Response:
    """One version of a resource (410 for the version that retracted it)."""
    if not (vid.isascii() and vid.isdigit() and len(vid) <= 9):
        raise NotFound(f"version '{vid}' of {rtype}/{rid} is not known")
    return _versioned(_current(rtype, rid, int(vid)))


@bp.get("/<rtype>/<rid>/_history")
def instance_history(rtype: str, rid: str) -> Response:
    """Every version of one resource, newest first (also of a retracted one)."""
    _served(rtype)
    require(rtype, "r")
    versions = _state().store.resource_history(rtype, rid, MAX_HISTORY)
    if not versions:
        raise NotFound(f"{rtype}/{rid} is not known")
    g.audit_patients = patient_references(v.body for v in versions)
    return respond(history(fhir_base(), rtype, rid, versions, total=versions[0].version))


def _parameters_resource(body: dict[str, Any]) -> dict[str, Any]:
    """The ``resource`` parameter of a Parameters body; 400 naming the element otherwise."""
    params = body.get("parameter")
    if not isinstance(params, list):
        raise BadRequest("Parameters.parameter must be an array of parameters")
    for index, param in enumerate(params):
        if not isinstance(param, dict):
            raise BadRequest(f"Parameters.parameter[{index}] must be an object")
        if param.get("name") != "resource":
            continue
        if isinstance(param.get("resource"), dict):
            return param["resource"]  # type: ignore[no-any-return]
        raise BadRequest(f"Parameters.parameter[{index}].resource must be a resource")
    raise BadRequest("Parameters carries no 'resource' parameter")


def _resource_from_body(rtype: str) -> dict[str, Any]:
    body = json_body()
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        return _parameters_resource(body)
    if not isinstance(body, dict) or body.get("resourceType") != rtype:
        raise BadRequest(f"the body must be a {rtype} resource (or Parameters with one)")
    return body


@bp.post("/<rtype>/$validate")
def validate_resource(rtype: str) -> Response:
    """``$validate`` against our profiles: 200 with an OperationOutcome (errors are issues)."""
    resource = _resource_from_body(rtype)
    profile = request.args.get("profile")
    state = _state()
    issues = validate(resource, state.profiles, profile=profile, trace=record_field)
    return respond(operation_outcome(issues, base=state.settings.canonical_base))


__all__ = ["bp"]
