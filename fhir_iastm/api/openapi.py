"""``/openapi.json`` and ``/api/record.schema.json``, generated — not hand-written.

The record's JSON Schema comes from the marshmallow record schemas (``records.contract``); the
OpenAPI 3.1 document (apispec) takes its objects as components, and the operations from the YAML
blocks of the view docstrings."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Response, current_app, jsonify

from fhir_iastm import __version__
from fhir_iastm.records.contract import definitions, record_json_schema

bp = Blueprint("openapi", __name__)

DOCUMENTED = ("sessions.post_session", "sessions.list_sessions", "sessions.get_session",
              "sessions.get_session_fhir", "sessions.push_session", "sessions.get_sync")


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3 document of the records API."""
    spec = APISpec(
        title="fhir-iastm records API",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[FlaskPlugin()],
        info={"description": "Clinic software posts IASTM session records; errors are FHIR "
                             "OperationOutcomes (application/fhir+json)."},
    )
    for name, schema in definitions().items():
        spec.components.schema(name, component=schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for endpoint in DOCUMENTED:
        spec.path(view=current_app.view_functions[endpoint], app=current_app)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI document."""
    state = current_app.extensions["fhir_iastm"]
    if not hasattr(state, "openapi"):
        state.openapi = build_spec()
    return jsonify(state.openapi)


@bp.get("/api/record.schema.json")
def record_schema() -> Response:
    """Serve the record's JSON Schema (draft 2020-12)."""
    state = current_app.extensions["fhir_iastm"]
    if not hasattr(state, "record_schema"):
        state.record_schema = record_json_schema()
    response = jsonify(state.record_schema)
    response.mimetype = "application/schema+json"
    return response


__all__ = ["bp", "build_spec"]
