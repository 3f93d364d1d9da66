"""Bulk Data ``$export`` (Bulk Data Access IG 2.0.0 export.html) and clinic Groups.

Kick-off ``GET|POST /fhir/$export``, ``/fhir/Patient/$export``, ``/fhir/Group/<id>/$export``
(``Accept: application/fhir+json`` and ``Prefer: respond-async`` required) → 202 with an absolute
``Content-Location``; status ``GET /fhir/$export-poll-status/<job>`` (202 + ``X-Progress`` /
``Retry-After``, 200 manifest + ``Expires``, 5xx OperationOutcome for a failed job, 429 when
polled too often), ``DELETE`` → 202; files ``GET /fhir/$export-file/<job>/<name>``
(``application/fhir+ndjson``, streamed from disk). Groups: ``GET /fhir/Group/<id>`` and
``GET /fhir/Group?identifier=``. docs/smart-bulk.md#bulk-data-export.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, json, request, send_file
from werkzeug.exceptions import NotFound

from fhir_iastm.api.auth import require, smart_client
from fhir_iastm.api.fhir_http import fhir_base, ignored_outcome, negotiate, respond, strict
from fhir_iastm.errors import IastmError, Issue, operation_outcome
from fhir_iastm.facade.bundle import with_meta
from fhir_iastm.facade.export import (
    EXPORT_TYPES,
    BulkError,
    parameters_pairs,
    parse_kickoff,
)
from fhir_iastm.facade.parse import SearchError, parse_search

bp = Blueprint("bulk", __name__, url_prefix="/fhir")
GROUP_PARAMS = ("_id", "identifier")


class TooManyRequestsError(IastmError):
    """Another export of this client is running, or the status was polled too soon (429)."""

    code = "E_TOO_MANY_REQUESTS"
    http_status = 429
    issue_type = "throttled"


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


def _owner() -> str:
    return smart_client() or g.get("actor") or "open"


def _prefer() -> list[str]:
    return [p.strip().replace(" ", "") for p in request.headers.get("Prefer", "").split(",")]


def _check_kickoff_headers() -> None:
    accept = request.headers.get("Accept", "")
    if "application/fhir+json" not in [a.split(";")[0].strip() for a in accept.split(",")]:
        raise BulkError("Accept", "a kick-off needs 'Accept: application/fhir+json'")
    if "respond-async" not in _prefer():
        raise BulkError("Prefer", "a kick-off needs 'Prefer: respond-async'")


def _too_many(message: str, retry_after: int) -> Response:
    exc = TooManyRequestsError(message)
    base = _state().settings.canonical_base
    return Response(json.dumps(exc.operation_outcome(base=base)), status=429,
                    mimetype="application/fhir+json", headers={"Retry-After": str(retry_after)})


def _kickoff(level: str, group: str | None = None) -> Response:
    _check_kickoff_headers()
    base = fhir_base()
    lenient = "handling=lenient" in _prefer()
    posted = request.method == "POST"
    pairs = parameters_pairs(request.get_json(silent=True)) if posted else \
        list(request.args.items(multi=True))
    export = parse_kickoff(level, pairs, lenient=lenient, base_url=base, group=group,
                           posted=posted)
    for rtype in export.written_types:
        require(rtype, "rs")
    state = _state()
    path = request.full_path.rstrip("?").removeprefix("/fhir")
    settings = state.settings
    job = state.exporter.kick_off(export, owner=_owner(), request_url=base + path, base_url=base,
                                  requires_token=settings.smart_auth or bool(settings.api_tokens))
    if job is None:
        return _too_many("an export of this client is already in progress; wait for it or "
                         "DELETE its status URL", max(settings.export_poll_seconds, 1) * 5)
    return Response(status=202, headers={
        "Content-Location": f"{base}/$export-poll-status/{job.id}"})


@bp.route("/$export", methods=["GET", "POST"])
def system_export() -> Response:
    """System-level export: every exported type."""
    return _kickoff("system")


@bp.route("/Patient/$export", methods=["GET", "POST"])
def patient_export() -> Response:
    """Patient-level export: every patient's compartment and what it references."""
    return _kickoff("patient")


@bp.route("/Group/<gid>/$export", methods=["GET", "POST"])
def group_export(gid: str) -> Response:
    """Group-level export: the compartments of a clinic's patients."""
    require("Group", "r")
    _organization(gid)
    return _kickoff("group", gid)


def _job(job_id: str) -> Any:
    job = _state().exporter.job(job_id, _owner())
    if job is None:
        raise NotFound(f"export {job_id[:40]} is not known (finished exports expire; a "
                       "cancelled one is gone)")
    return job


@bp.route("/$export-poll-status/<job_id>", methods=["GET", "DELETE"])
def status(job_id: str) -> Response:
    """The status of an export, its manifest, or its cancellation (DELETE)."""
    state = _state()
    job = _job(job_id)
    if request.method == "DELETE":
        state.exporter.jobs.cancel(job.id)
        body = operation_outcome([Issue("information", "informational",
                                        diagnostics=f"export {job.id} was cancelled")],
                                 base=state.settings.canonical_base)
        return Response(json.dumps(body), status=202, mimetype="application/fhir+json")
    wait = state.settings.export_poll_seconds
    before = state.exporter.jobs.polled(job.id)
    if job.status in ("queued", "running"):
        now = state.store.clock()
        if wait and before is not None and now - before < timedelta(seconds=wait / 2):
            return _too_many(f"polled too often; wait {wait} s between polls", wait)
        return Response(status=202, headers={"X-Progress": job.progress or job.status,
                                             "Retry-After": str(max(wait, 1))})
    if job.status == "failed":
        return Response(json.dumps(job.error), status=500, mimetype="application/fhir+json")
    expires = format_datetime(job.expires_at, usegmt=True)
    return Response(json.dumps(job.manifest), status=200, mimetype="application/json",
                    headers={"Expires": expires})


@bp.get("/$export-file/<job_id>/<name>")
def export_file(job_id: str, name: str) -> Response:
    """One NDJSON file of a finished export, streamed from disk."""
    state = _state()
    job = _job(job_id)
    path = state.exporter.file(job, name)
    if path is None:
        raise NotFound(f"export {job.id} has no file {name[:80]}")
    rtype = name.split("-")[0]
    if rtype in EXPORT_TYPES:
        require(rtype, "rs")
    return send_file(path, mimetype="application/fhir+ndjson", conditional=False,
                     max_age=0)


def _organization(gid: str) -> Any:
    stored = _state().store.read_resource("Organization", gid)
    if stored is None or stored.gone:
        raise NotFound(f"Group/{gid} is not known")
    return stored


@bp.get("/Group/<gid>")
def group_read(gid: str) -> Response:
    """The Group of one clinic (its id is the clinic Organization's)."""
    negotiate()
    require("Group", "r")
    org = _organization(gid)
    return respond(_state().exporter.group(with_meta(org), org.last_updated))


@bp.get("/Group")
def group_search() -> Response:
    """Groups by ``identifier`` (the clinic's) or ``_id``; at most 500 in one page."""
    negotiate()
    require("Group", "s")
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("_format", "_pretty")]
    unknown = [k for k, _ in args if k not in GROUP_PARAMS]
    if unknown and strict():
        raise SearchError(unknown[0], "is not a supported search parameter of Group")
    base = fhir_base()
    wanted = [(k, v) for k, v in args if k in GROUP_PARAMS] + [("_count", "500")]
    parsed = parse_search("Organization", wanted, base)
    found = _state().store.search(parsed.query)
    exporter = _state().exporter
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/Group/{m.resource_id}",
         "resource": exporter.group(with_meta(m), m.last_updated), "search": {"mode": "match"}}
        for m in found.matches]
    if unknown:
        outcome = ignored_outcome(unknown, _state().settings.canonical_base)
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    return respond({"resourceType": "Bundle", "type": "searchset", "total": found.total,
                    "link": [{"relation": "self", "url": request.url}], "entry": entries})


__all__ = ["bp"]
