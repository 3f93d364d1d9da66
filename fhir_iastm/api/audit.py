"""AuditEvents of the facade (docs/audit.md): recorded after every read of patient data, stored
off the request path, readable at ``/fhir/AuditEvent`` by an administrator only.

After a read, vread, instance history, search or ``$export`` kick-off of a served type (whatever
its status, also a 401/403/404), :func:`record_access` builds the request's AuditEvent
(``facade.audit``) and hands it to the process's :class:`AuditWriter`, a thread that stores the
queued events in batches, one transaction each, so a read pays for a list append, not for a
database write. The queue is bounded (a request waits when it is full) and drained at exit; an
AuditEvent search drains it first, so an administrator sees this process's events at once.

``GET /fhir/AuditEvent/<id>`` and ``GET /fhir/AuditEvent?date=&agent=&entity=&patient=`` need a
static token with scope ``admin`` or a SMART token with ``system/AuditEvent.r`` / ``.s`` (never
granted by a ``system/*`` scope); anyone else gets 403, also on an open instance.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import Forbidden, NotFound

from fhir_iastm.api.auth import require
from fhir_iastm.api.fhir_http import fhir_base, ignored_outcome, negotiate, respond, strict
from fhir_iastm.facade.audit import (
    Access,
    audit_row,
    next_cursor,
    parse_audit_search,
    query_names,
    split_reference,
)
from fhir_iastm.facade.params import RESOURCE_TYPES
from fhir_iastm.facade.parse import SearchError
from fhir_iastm.storage import AuditRow, AuditStore, utc_now

log = logging.getLogger("fhir_iastm.audit")
bp = Blueprint("audit", __name__, url_prefix="/fhir")
bp.before_request(negotiate)

#: endpoint -> the audited interaction (restful-interaction code)
INTERACTIONS = {"fhir.read": "read", "fhir.vread": "vread",
                "fhir.instance_history": "history-instance", "fhir.search": "search-type",
                "bulk.system_export": "operation", "bulk.patient_export": "operation",
                "bulk.group_export": "operation"}
_EXPORTS = {"bulk.system_export": "$export", "bulk.patient_export": "Patient/$export"}


class AuditWriter:
    """A per-process queue of AuditEvents and the thread that stores them in batches."""

    def __init__(self, store: AuditStore, *, batch: int = 500, limit: int = 20_000,
                 linger: float = 0.1) -> None:
        self.store = store
        self.batch = batch
        self.limit = limit
        #: seconds the thread lets events gather after the first one, so it stores them in one
        #: transaction instead of one each (docs/audit.md#writing-without-slowing-reads)
        self.linger = linger
        self._pid = -1
        self._thread: threading.Thread | None = None
        atexit.register(self.close)
        store.store.closing.append(self.close)

    def _start(self) -> None:
        """(Re)start the queue and thread in this process (after a fork, too)."""
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: list[AuditRow] = []
        self._busy = 0
        self._flushing = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, row: AuditRow) -> None:
        """Queue one event; waits (at most 5 s) while the queue is full."""
        if self._pid != os.getpid():
            self._start()
        with self._cond:
            self._cond.wait_for(lambda: len(self._pending) < self.limit, timeout=5.0)
            self._pending.append(row)
            if len(self._pending) in (1, self.batch):  # the thread waits for the first or a batch
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is stored; False on timeout."""
        if self._pid != os.getpid():
            return True
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()  # no lingering: store what is queued now
            try:
                return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)
            finally:
                self._flushing -= 1

    def close(self) -> None:
        """Store what is queued, then end the thread (a later ``submit`` starts another)."""
        if self._pid != os.getpid() or self._thread is None:
            return
        self.flush()
        thread, self._thread = self._thread, None
        with self._cond:
            self._pid = -1
            self._cond.notify_all()
        thread.join(timeout=10.0)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._thread is not me)
                self._cond.wait_for(lambda: len(self._pending) >= self.batch or self._flushing
                                    or self._thread is not me, timeout=self.linger)
                if not self._pending:
                    return
                rows, self._pending = self._pending[:self.batch], self._pending[self.batch:]
                self._busy = len(rows)
            self._store(rows)
            with self._cond:
                self._busy = 0
                self._cond.notify_all()

    def _store(self, rows: list[AuditRow]) -> None:
        for attempt in range(3):
            try:
                self.store.add(rows)
                return
            except Exception as exc:  # the database is down: retry, then say what was lost
                log.error("audit events not stored", extra={"fields": {
                    "events": len(rows), "attempt": attempt + 1, "error": type(exc).__name__}})
                time.sleep(0.5 * 2 ** attempt)


def _access(endpoint: str, status: int) -> Access:
    view = request.view_args or {}
    refs: tuple[str, ...] = g.get("audit_references", ())
    if not refs and "rid" in view:
        refs = (f"{view['rtype']}/{view['rid']}",)
    if not refs and "gid" in view:
        refs = (f"Group/{view['gid']}",)
    query = None
    if endpoint == "fhir.search":
        query = query_names(view["rtype"], request.args.keys())
    elif endpoint in INTERACTIONS and INTERACTIONS[endpoint] == "operation":
        names = request.args.keys() if request.method == "GET" else ()
        query = query_names(_EXPORTS.get(endpoint, f"Group/{view.get('gid')}/$export"), names)
    patients = g.get("audit_patients") or tuple(
        r for r in refs if (split_reference(r) or ("",))[0] == "Patient")
    return Access(INTERACTIONS[endpoint], status, g.get("actor") or "anonymous",
                  references=refs, patients=patients, query=query,
                  address=request.remote_addr)


def record_access(response: Response) -> Response:
    """``after_request`` of the facade: queue the AuditEvent of an audited request."""
    endpoint = request.endpoint or ""
    rtype = (request.view_args or {}).get("rtype")
    if endpoint in INTERACTIONS and (rtype is None or rtype in RESOURCE_TYPES):
        state = current_app.extensions["fhir_iastm"]
        row = audit_row(_access(endpoint, response.status_code), uuid.uuid4().hex, utc_now(),
                        fhir_base())
        state.audit.submit(row)
    return response


def _admin(permission: str) -> None:
    settings = current_app.extensions["fhir_iastm"].settings
    if not settings.api_tokens and not settings.smart_auth:
        raise Forbidden("AuditEvents are readable with an administrator token only (scope "
                        "'admin' in IASTM_API_TOKENS, or SMART scope system/AuditEvent.rs); "
                        "this instance has no tokens configured")
    require("AuditEvent", permission)


@bp.get("/AuditEvent/<event_id>")
def read_event(event_id: str) -> Response:
    """One AuditEvent (administrators only)."""
    _admin("r")
    state = current_app.extensions["fhir_iastm"]
    state.audit.flush()
    event = state.audit.store.read(event_id[:36])
    if event is None:
        raise NotFound(f"AuditEvent/{event_id[:64]} is not known")
    return respond(event)


@bp.get("/AuditEvent")
def search_events() -> Response:
    """AuditEvents by date, agent (altid), entity and patient, newest first."""
    _admin("s")
    state = current_app.extensions["fhir_iastm"]
    query, ignored = parse_audit_search(list(request.args.items(multi=True)))
    if ignored and strict():
        raise SearchError(ignored[0], "is not a supported search parameter of AuditEvent")
    state.audit.flush()
    events, after = state.audit.store.search(query)
    return respond(_bundle(events, next_cursor(after), ignored))


def _bundle(events: list[dict[str, Any]], cursor: str | None,
            ignored: list[str]) -> dict[str, Any]:
    base = fhir_base()
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "_cursor"]
    links = [{"relation": "self", "url": request.url}]
    if cursor is not None:
        links.append({"relation": "next",
                      "url": f"{base}/AuditEvent?{urlencode([*kept, ('_cursor', cursor)])}"})
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/AuditEvent/{e['id']}", "resource": e, "search": {"mode": "match"}}
        for e in events]
    if ignored:
        outcome = ignored_outcome(ignored, current_app.extensions["fhir_iastm"]
                                  .settings.canonical_base)
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle


__all__ = ["AuditWriter", "INTERACTIONS", "bp", "record_access"]
