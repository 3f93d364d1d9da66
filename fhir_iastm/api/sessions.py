"""The records API under ``/api/sessions`` (README.md, docs/decisions.md#d15).

Views stay thin: parse the request, call ``fhir_iastm.service`` or the store, serialize. Errors
are raised as ``IastmError`` and rendered as OperationOutcomes by ``api.errors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, Conflict

from fhir_iastm.api.body import json_body
from fhir_iastm.api.errors import fhir_response
from fhir_iastm.errors import FhirConflictError, operation_outcome
from fhir_iastm.service import (
    DryRun,
    apply_stored_plan,
    dry_run_stored,
    plan_id,
    save_record,
    stored_bundle,
)
from fhir_iastm.storage import SYNC_STATES

bp = Blueprint("sessions", __name__, url_prefix="/api/sessions")

SYNC_FILTERS = SYNC_STATES
STATUS_FILTERS = ("completed", "entered-in-error", "cancelled")


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


def _links(session_id: str) -> dict[str, str]:
    # One URL build instead of three: the other two rules are this one's path plus a segment,
    # and url_for quotes the id the same way for each (tests/api/test_serving_fast_paths.py).
    own = url_for("sessions.get_session", session_id=session_id)
    return {"self": own, "fhir": f"{own}/fhir", "sync": f"{own}/sync"}


@bp.post("")
def post_session() -> Response:
    """Store a session record and queue its push.
    ---
    post:
      summary: Store one IASTM session record (docs/decisions.md#d15 semantics) and queue its push
      requestBody:
        required: true
        content:
          application/json:
            schema: SessionRecord
      responses:
        201: {description: stored (new session or higher record_version)}
        200: {description: identical repeat; nothing written}
        409: {description: same version with other content, or a lower version (OperationOutcome)}
        413: {description: body over the size limit (OperationOutcome)}
        415: {description: not JSON (OperationOutcome)}
        422: {description: invalid record (OperationOutcome naming each field)}
    """
    state = _state()
    saved = save_record(state.store, json_body(), state.mapping, actor=g.get("actor"))
    result = saved.result
    payload: dict[str, Any] = {
        "session_id": result.session_id,
        "record_version": result.record_version,
        "status": result.status,
        "record_hash": result.record_hash,
        "links": _links(result.session_id),
    }
    if saved.warnings:
        payload["warnings"] = operation_outcome(saved.warnings,
                                                base=state.settings.canonical_base)
    response = jsonify(payload)
    response.status_code = result.http_status
    response.headers["Location"] = payload["links"]["self"]
    return response


#: Largest value of an INTEGER column (record_version) on every supported database.
MAX_INT = 2**31 - 1


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    value = _optional_int_arg(name, low, high)
    return default if value is None else value


def _optional_int_arg(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    # ASCII digits only: str.isdigit() also accepts '²' (int() refuses it), and the length bound
    # keeps a 30-digit value from reaching the database driver (an overflow there is a 500).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not low <= int(raw) <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}")
    return int(raw)


def _choice_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}")
    return value


def _since_arg() -> datetime | None:
    raw = request.args.get("since")
    if raw is None:
        return None
    try:
        since = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest("'since' must be an ISO 8601 date or date-time") from exc
    if since.tzinfo is None:
        raise BadRequest("'since' needs a UTC offset (e.g. 2025-05-01T00:00:00Z)")
    return since


@bp.get("")
def list_sessions() -> Response:
    """List stored sessions.
    ---
    get:
      summary: Current versions of stored sessions, filtered and paged by cursor
      parameters:
        - {in: query, name: patient, schema: {type: string}, description: patient MRN}
        - in: query
          name: since
          schema: {type: string}
          description: stored at or after (ISO 8601 with offset)
        - in: query
          name: status
          schema: {type: string, enum: [completed, entered-in-error, cancelled]}
        - in: query
          name: sync
          schema:
            type: string
            enum: [queued, pushing, pushed, unchanged, superseded, dead-letter, resolved]
        - {in: query, name: limit, schema: {type: integer, minimum: 1, maximum: 1000}}
        - {in: query, name: cursor, schema: {type: string}}
      responses:
        200: {description: a page of sessions with the next cursor}
        400: {description: bad query parameter (OperationOutcome)}
    """
    page = _state().store.list_records(
        patient=request.args.get("patient"),
        since=_since_arg(),
        status=_choice_arg("status", STATUS_FILTERS),
        sync=_choice_arg("sync", SYNC_FILTERS),
        limit=_int_arg("limit", 50, 1, 1000),
        cursor=request.args.get("cursor"),
    )
    items = [
        {"session_id": r.session_id, "record_version": r.record_version, "status": r.status,
         "links": _links(r.session_id)}
        for r in page.items
    ]
    body: dict[str, Any] = {"items": items, "next_cursor": page.next_cursor}
    if page.next_cursor:
        args = request.args.to_dict()
        args["cursor"] = page.next_cursor
        body["next"] = f"{url_for('sessions.list_sessions')}?{urlencode(args)}"
    return jsonify(body)


@bp.get("/<session_id>")
def get_session(session_id: str) -> Response:
    """Read one stored record.
    ---
    get:
      summary: The current version of a stored record, exactly as accepted
      parameters:
        - {in: path, name: session_id, required: true, schema: {type: string}}
        - {in: query, name: version, schema: {type: integer, minimum: 1}}
      responses:
        200: {description: the record}
        404: {description: unknown session (OperationOutcome)}
    """
    version = _optional_int_arg("version", 1, MAX_INT)
    state = _state()
    stored = state.store.get_record(session_id, version)
    state.store.audit(g.get("actor"), "read", session_id, "ok")
    return jsonify(stored.body)


@bp.get("/<session_id>/fhir")
def get_session_fhir(session_id: str) -> Response:
    """The session as a FHIR transaction Bundle.
    ---
    get:
      summary: The FHIR R4 transaction Bundle of the current version
      parameters:
        - {in: path, name: session_id, required: true, schema: {type: string}}
      responses:
        200: {description: a FHIR transaction Bundle (application/fhir+json)}
        404: {description: unknown session (OperationOutcome)}
    """
    state = _state()
    stored = state.store.get_record(session_id)
    bundle = stored_bundle(stored, state.mapping)
    state.store.audit(g.get("actor"), "read-fhir", session_id, "ok")
    return fhir_response(bundle)


@bp.post("/<session_id>/push")
def push_session(session_id: str) -> Response:
    """Queue a push now, or (``dry_run=true``) show what it would do, or (``plan=ID``) apply
    the plan a dry run showed.
    ---
    post:
      summary: Queue the current version for push to the configured FHIR server
      parameters:
        - {in: path, name: session_id, required: true, schema: {type: string}}
        - {in: query, name: dry_run, required: false, schema: {type: boolean},
           description: "read the server and return the plan (an action and a JSON Patch per
             resource, and its plan_id, docs/targets.md#dry-run); nothing is queued or written"}
        - {in: query, name: plan, required: false, schema: {type: string},
           description: "the plan_id of a dry run: write exactly that plan now, with If-Match on
             the versions it resolved (docs/targets.md#dry-run)"}
      responses:
        200: {description: "the dry run's plan, or the applied plan's push outcome"}
        202: {description: queued; see the sync link}
        400: {description: dry_run is not true or false, or given with plan (OperationOutcome)}
        404: {description: unknown session (OperationOutcome)}
        409: {description: "no configured FHIR server; or the plan no longer holds (E_PLAN_CHANGED)
          or the server changed during the write (E_PUSH_REJECTED): nothing written"}
        502: {description: the FHIR server failed during a dry run (OperationOutcome)}
    """
    state = _state()
    dry_run = request.args.get("dry_run", "false")
    planned = request.args.get("plan")
    if dry_run not in ("true", "false"):
        raise BadRequest("dry_run: expected true or false")
    if planned is not None and dry_run == "true":
        raise BadRequest("plan: apply a plan or dry-run, not both")
    if (planned is not None or dry_run == "true") and state.settings.fhir_base_url is None:
        what = "plan" if planned is not None else "dry_run"
        raise Conflict(f"{what}: no FHIR server is configured (IASTM_FHIR_BASE_URL)")
    if planned is not None:
        return _apply(state, session_id, planned)
    if dry_run == "true":
        plan = dry_run_stored(state.store, state.settings, state.mapping, session_id)
        state.store.audit(g.get("actor"), "push-dry-run", session_id, "ok")
        return jsonify({**plan.to_json(), "plan_id": plan_id(plan),
                        "links": _links(session_id)})
    entry = state.store.enqueue(session_id, actor=g.get("actor"))
    response = jsonify({"session_id": session_id, "outbox_id": entry, "links": _links(session_id)})
    response.status_code = 202
    return response


def _apply(state: Any, session_id: str, planned: str) -> Response:
    """Write a dry run's plan; the outbox then confirms it (its push finds the session
    unchanged) and records the sync state."""
    try:
        done = apply_stored_plan(state.store, state.settings, state.mapping, session_id, planned)
    except FhirConflictError:
        state.store.audit(g.get("actor"), "push-apply", session_id, "conflict")
        raise
    state.store.audit(g.get("actor"), "push-apply", session_id, "ok")
    if not isinstance(done, DryRun):  # written (an unchanged plan writes nothing)
        state.store.enqueue(session_id, actor=g.get("actor"))
    return jsonify({**done.to_json(), "plan_id": planned, "links": _links(session_id)})


@bp.get("/<session_id>/sync")
def get_sync(session_id: str) -> Response:
    """Push state.
    ---
    get:
      summary: Push state (queued/pushed/unchanged/superseded/dead-letter), attempts, last outcome
      parameters:
        - {in: path, name: session_id, required: true, schema: {type: string}}
      responses:
        200: {description: the sync state}
        404: {description: unknown session (OperationOutcome)}
    """
    return jsonify(_state().store.get_sync(session_id).to_dict())


__all__ = ["bp"]
