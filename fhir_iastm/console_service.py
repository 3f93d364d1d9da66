"""The clinic console's use cases (docs/console.md): what the ``/console/`` views call.

* :func:`login_scopes` — the scopes of a presented static API token or SMART access token;
* :func:`session_detail` — a stored session, its FHIR resources with their narratives, the
  validation issues traced to the record field, its sync state and push history;
* :func:`course` — one patient's course of care (``console.course_view`` over the stored records);
* :func:`retry_push` / :func:`retry_kind` — queue a push again, never a second push of a version
  the server already holds.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_iastm.authz import Authorizer
from fhir_iastm.console.course import CourseView, course_view, plans_of
from fhir_iastm.console.thresholds import Threshold
from fhir_iastm.errors import Issue, NotFoundError
from fhir_iastm.mapping.narrative import with_narratives
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.mapping.trace import bundle_record_field, record_field
from fhir_iastm.profiles import ProfileIndex
from fhir_iastm.records import check_record
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.service import stored_bundle
from fhir_iastm.smart.scopes import allows
from fhir_iastm.smart.tokens import AccessTokenError
from fhir_iastm.storage import ConsoleStore, Store, SyncState
from fhir_iastm.validation import validate


def token_digest(token: str) -> str:
    """What the console's session cookie keeps of a static token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def static_scopes(digest: str, tokens: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The scopes of the configured token whose digest is ``digest`` (None: no such token)."""
    for token, scopes in tokens.items():
        if hmac.compare_digest(token_digest(token), digest):
            return scopes
    return None


def smart_scopes(authorizer: Authorizer, access_token: str, fhir_base: str
                 ) -> frozenset[str] | None:
    """``read`` for a valid SMART access token that may read and search Procedures (the facade
    is read-only: a SMART client never gets ``write``); None when the token is not valid."""
    try:
        token = authorizer.check(access_token, fhir_base)
    except AccessTokenError:
        return None
    return frozenset({"read"}) if allows(token.scopes, "Procedure", "rs") else frozenset()


@dataclass(frozen=True)
class SessionDetail:
    record: SessionRecord
    record_version: int
    versions: list[int]
    resources: list[dict[str, Any]]
    issues: list[Issue]
    warnings: list[Issue]
    sync: SyncState
    history: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    server_issues: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)


def _server_issues(outcome: Any, bundle: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """The issues of a server's OperationOutcome, each with the record field it traces to."""
    if not isinstance(outcome, dict):
        return []
    out = []
    for issue in outcome.get("issue") or []:
        expressions = issue.get("expression") or issue.get("location") or [None]
        out.append((issue, bundle_record_field(bundle, expressions[0])))
    return out


def dead_letters(store: Store, settings: MappingSettings, kind: str | None, limit: int = 50
                 ) -> list[dict[str, Any]]:
    """The newest dead letters (of one error code), each with ``issues``: the server's issues
    with the record field each traces to."""
    rows = ConsoleStore(store).dead_letters(kind, limit=limit)
    for row in rows:
        bundle = stored_bundle(store.get_record(row["session_id"]), settings)
        row["issues"] = _server_issues(row["last_outcome"], bundle)
    return rows


def session_detail(store: Store, profiles: ProfileIndex, settings: MappingSettings,
                   session_id: str) -> SessionDetail:
    """Everything the session page shows; NotFoundError for an unknown session."""
    stored = store.get_record(session_id)
    bundle = with_narratives(stored_bundle(stored, settings))
    console = ConsoleStore(store)
    sync = store.get_sync(session_id)
    _, checks = check_record(stored.body)
    return SessionDetail(
        record=from_dict(SessionRecord, stored.body),
        record_version=stored.record_version,
        versions=store.list_versions(session_id),
        resources=[entry["resource"] for entry in bundle.get("entry", [])],
        issues=validate(bundle, profiles, trace=record_field),
        warnings=[i for i in checks if not i.is_error],
        sync=sync,
        history=console.push_history(session_id),
        audit=console.audit_of(session_id),
        server_issues=_server_issues(sync.last_outcome, bundle),
    )


def course(store: Store, mrn: str, plan: str | None, table: Mapping[str, Threshold],
           *, plan_given: bool) -> tuple[CourseView, list[str | None]]:
    """A patient's course of care under ``plan`` (not ``plan_given``: the newest session's plan)
    and every plan of the patient; NotFoundError when the patient has no session."""
    rows = ConsoleStore(store).patient_records(mrn)
    if not rows:
        raise NotFoundError(f"no sessions of patient {mrn}")
    records = [from_dict(SessionRecord, row.body) for row in rows]
    plans = plans_of(records)
    chosen = plan if plan_given else plans[0]
    if chosen not in plans:
        raise NotFoundError(f"no plan of care {chosen} for this patient")
    sync = {row.session_id: row.sync_state for row in rows if row.sync_state}
    return course_view(records, chosen, table=table, sync=sync), plans


@dataclass(frozen=True)
class Retry:
    session_id: str
    result: str  # queued | already-pushed
    message: str


def retry_push(store: Store, session_id: str, *, actor: str | None) -> Retry:
    """Queue the current version for push now — unless the server already holds it (then
    nothing is queued: no duplicate push). NotFoundError for an unknown session."""
    sync = store.get_sync(session_id)
    held = sync.pushed_version == sync.current_version and sync.state in ("pushed", "unchanged")
    if held and not sync.pending:
        return Retry(session_id, "already-pushed",
                     f"session {session_id} version {sync.current_version} is already on the "
                     "FHIR server; nothing was pushed again")
    store.enqueue(session_id, actor=actor)
    return Retry(session_id, "queued", f"session {session_id} version {sync.current_version} "
                 "is queued; the outbox worker pushes it now")


def retry_kind(store: Store, error_code: str, *, actor: str | None) -> list[Retry]:
    """Queue every dead letter with ``error_code`` again."""
    dead = ConsoleStore(store).dead_letters(error_code, limit=10_000)
    return [retry_push(store, row["session_id"], actor=actor) for row in dead]


__all__ = ["Retry", "SessionDetail", "course", "dead_letters", "retry_kind", "retry_push",
           "session_detail", "smart_scopes", "static_scopes", "token_digest"]
