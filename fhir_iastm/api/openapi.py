"""Edge (Flask): ``/openapi.json``, generated — not hand-written — by apispec from the marshmallow
record schemas (``records.schemas``) and the YAML blocks of the view docstrings."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Response, current_app, jsonify

from fhir_iastm import __version__
from fhir_iastm.records.schemas import SessionRecordSchema

bp = Blueprint("openapi", __name__)

DOCUMENTED = ("sessions.post_session", "sessions.list_sessions", "sessions.get_session",
              "sessions.get_session_fhir", "sessions.push_session", "sessions.get_sync")


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3 document of the records API."""
    spec = APISpec(
        title="fhir-iastm records API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
        info={"description": "Clinic software posts IASTM session records; errors are FHIR "
                             "OperationOutcomes (application/fhir+json)."},
    )
    spec.components.schema("SessionRecord", schema=SessionRecordSchema)
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


__all__ = ["bp", "build_spec"]
