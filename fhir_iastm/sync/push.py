"""Push one IASTM session record to a FHIR server: idempotent, never losing or duplicating it.

``service`` wires it to the store and the outbox worker.

Algorithm (docs/decisions.md#d5 to #d13, docs/mapping.md):

1. Map the record to its transaction Bundle (shared resources ``POST`` + ``ifNoneExist``,
   session-owned ones conditional ``PUT Type?identifier=``).
2. Check the server's capabilities once per client (docs/decisions.md#d13); degrade entries if
needed.
3. Look the IASTM Procedure up by its ``iastm-session`` identifier. Its ``source-record-version``
   extension higher than ours -> ``superseded``; equal version and hash -> ``unchanged``; several
   matches -> ``rejected`` (E_AMBIGUOUS_MATCH). Nothing on the server and the record is
   ``entered-in-error`` -> nothing is sent (docs/decisions.md#d10).
4. Otherwise write the Procedure entry as ``PUT Procedure/{id}`` with ``ifMatch``
(docs/decisions.md#d7), add
   the retractions of dropped elements (docs/decisions.md#d8) and POST ONE transaction. A 409, or a
   412 that
   is not "multiple matches", means someone wrote in between: re-read and retry (bounded).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from fhir_iastm.backoff import Backoff
from fhir_iastm.errors import (
    AmbiguousMatchError,
    FhirAuthError,
    FhirConflictError,
    FhirServerError,
    FhirUnavailableError,
    ambiguous_match,
    operation_outcome,
)
from fhir_iastm.mapping import ids, to_fhir
from fhir_iastm.mapping.provenance import provenance_entries
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord
from fhir_iastm.sync.bundle_ops import (
    Json,
    Systems,
    emitted_identifiers,
    guarded_entry,
    is_session_procedure,
    response_ids,
    session_entry_index,
    source_hash,
    source_version,
    with_entries,
)
from fhir_iastm.sync.fallback import ALL_CONDITIONAL, degrade, missing_features
from fhir_iastm.sync.outcome import STATUSES, PushOutcome
from fhir_iastm.sync.ports import FhirPort, LastPushedView
from fhir_iastm.sync.retract import plan_retractions
from fhir_iastm.sync.split import send_split

MAX_ATTEMPTS = 6
LOOKUP_CACHE_CONTROL = "no-cache, no-store"
#: Wait before re-reading after a 409/412: 0.02-0.1 s, doubling per attempt.
CONFLICT_BACKOFF = Backoff(base=0.06, factor=2.0, cap=10.0, jitter=2 / 3)


@dataclass(frozen=True)
class Plan:
    """What one record turns into, computed once and reused across retries."""

    record: SessionRecord
    bundle: Json
    systems: Systems
    base: str
    index: int
    emitted: tuple[str, ...]
    record_hash: str | None
    #: the Device and Provenance entries every transaction of this record carries
    audit: tuple[Json, ...] = ()
    #: receiver setting (docs/targets.md#receiver-settings): most entries per transaction
    #: (0: no limit)
    max_entries: int = 0

    @property
    def session_id(self) -> str:
        return self.record.session_id


def push_record(
    client: FhirPort,
    record: SessionRecord,
    *,
    settings: MappingSettings | None = None,
    last_pushed: LastPushedView | None = None,
    bundle: Json | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    max_entries: int = 0,
    search_first: bool = False,
) -> PushOutcome:
    """Push one record version (``bundle``: its pre-mapped Bundle, else ``to_fhir`` runs here).
    Receiver settings (docs/targets.md#receiver-settings): ``max_entries`` > 0 splits a larger
    transaction (``sync.split``); ``search_first`` sends no conditional create/update at all.
    Raises ``FhirUnavailableError`` / ``FhirAuthError`` / ``FhirServerError`` (5xx, malformed
    replies) and ``FhirConflictError`` (409 still there after ``max_attempts`` re-reads) — the
    outbox retries those later; a record the server refuses (4xx, a 412 that re-reading does not
    cure, several matches) comes back ``rejected`` with the server's OperationOutcome.
    """
    settings = settings or MappingSettings()
    plan = replace(plan_record(record, settings, bundle), max_entries=max_entries)
    missing = missing_for(client) | (ALL_CONDITIONAL if search_first else frozenset())
    for attempt in range(1, max_attempts + 1):
        try:
            return _attempt(client, plan, last_pushed, missing)
        except FhirConflictError as exc:
            if isinstance(exc, AmbiguousMatchError):
                return rejected_outcome(plan, exc)
            if attempt == max_attempts:
                if exc.status == 409:  # still contended: transient, the outbox retries later
                    raise
                # a 412 that re-reading did not cure (docs/decisions.md#d9)
                return rejected_outcome(plan, exc)
            sleep(CONFLICT_BACKOFF.delay(attempt))
        except FhirServerError as exc:
            if _is_record_fault(exc):
                return rejected_outcome(plan, exc)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def plan_record(
    record: SessionRecord, settings: MappingSettings, bundle: Json | None = None
) -> Plan:
    """The record's Bundle and what the push reads of it (``bundle``: pre-mapped, else mapped)."""
    if bundle is None:
        bundle = to_fhir(record, settings)
    systems = Systems.of(settings.base)
    index = session_entry_index(bundle, systems)
    return Plan(
        record=record,
        bundle=bundle,
        systems=systems,
        base=settings.base,
        index=index,
        emitted=emitted_identifiers(bundle, systems),
        record_hash=source_hash(bundle["entry"][index]["resource"], systems),
        audit=tuple(provenance_entries(bundle, record, settings)),
    )


def missing_for(client: FhirPort) -> frozenset[str]:
    """Features the server lacks (docs/decisions.md#d13); read once per client and cached on it."""
    cached = getattr(client, "_iastm_missing_features", None)
    if cached is None:
        cached = missing_features(client.capabilities())
        with contextlib.suppress(AttributeError):  # a client with __slots__: check every time
            client._iastm_missing_features = cached  # type: ignore[attr-defined]
    return cached


def find_session_procedure(client: FhirPort, systems: Systems, session_id: str) -> Json | None:
    """The server's IASTM Procedure of this session, or None; several -> E_AMBIGUOUS_MATCH."""
    query = f"{systems.session}|{ids.fhir_escape(session_id)}"
    # a synchronous search that HAPI does not store: at most a few matches, no paging needed
    page = client.search("Procedure", [("identifier", query)], cache_control=LOOKUP_CACHE_CONTROL)
    found = [
        e["resource"]
        for e in page.get("entry") or []
        if is_session_procedure(e.get("resource") or {}, systems)
    ]
    if len(found) > 1:
        message = f"{len(found)} IASTM Procedures carry this session's identifier"
        raise ambiguous_match(message, "Procedure.identifier")
    return found[0] if found else None


@dataclass(frozen=True)
class Resolution:
    """What the server holds for one record, read once per attempt (the push and the dry run).

    ``early``: the outcome that needs no write (then ``entries`` is empty); otherwise
    ``entries`` is the transaction to send before ``degrade`` (the guarded session Procedure,
    the retractions, the audit entries).
    """

    server: Json | None
    early: PushOutcome | None
    entries: tuple[Json, ...] = ()
    retractions: tuple[Json, ...] = ()


def resolve(client: FhirPort, plan: Plan, last_pushed: LastPushedView | None) -> Resolution:
    """Look the session up, apply the version guard and plan the retractions (no write)."""
    server = find_session_procedure(client, plan.systems, plan.session_id)
    early = _guard(plan, server)
    if early is not None:
        return Resolution(server, early)
    entries = list(plan.bundle["entry"])
    if server is not None:
        entries[plan.index] = guarded_entry(entries[plan.index], server)
    retractions = plan_retractions(
        client,
        systems=plan.systems,
        base=plan.base,
        session_id=plan.session_id,
        emitted=plan.emitted,
        server_procedure=server,
        last_pushed=last_pushed,
    )
    return Resolution(server, None, tuple(entries + retractions + list(plan.audit)),
                      tuple(retractions))


def _attempt(
    client: FhirPort, plan: Plan, last_pushed: LastPushedView | None, missing: frozenset[str]
) -> PushOutcome:
    found = resolve(client, plan, last_pushed)
    if found.early is not None:
        return found.early
    tx = degrade(client, with_entries(plan.bundle, list(found.entries)), missing)
    if plan.max_entries and len(tx["entry"]) > plan.max_entries:
        sent, response = send_split(client, tx, plan.max_entries, plan.systems)
    else:
        sent, response = tx["entry"], client.transaction(tx)
    return pushed_outcome(plan, found, response_ids(sent, response))


def pushed_outcome(plan: Plan, found: Resolution, written: dict[str, str]) -> PushOutcome:
    """The ``pushed`` outcome of a transaction the server accepted."""
    server = found.server
    return PushOutcome(
        "pushed",
        plan.session_id,
        plan.record.record_version,
        plan.record_hash,
        identifiers=plan.emitted,
        fhir_ids=written,
        server_version=source_version(server, plan.systems) if server else None,
        retracted=tuple(e["request"]["url"] for e in found.retractions),
        sent=True,
    )


def _guard(plan: Plan, server: Json | None) -> PushOutcome | None:
    """The outcome that needs no write (superseded / unchanged / never-pushed retraction)."""
    version = plan.record.record_version
    if server is None:
        if plan.record.status != "entered-in-error":
            return None
        return PushOutcome(
            "unchanged",
            plan.session_id,
            version,
            plan.record_hash,
            note="entered-in-error session never pushed: nothing sent (docs/decisions.md#d10)",
        )
    ref = {f"{plan.systems.session}|{plan.session_id}": f"Procedure/{server['id']}"}
    theirs = source_version(server, plan.systems)
    if theirs is not None and theirs > version:
        return PushOutcome(
            "superseded",
            plan.session_id,
            version,
            plan.record_hash,
            fhir_ids=ref,
            server_version=theirs,
            note="the server holds a newer record_version",
        )
    if theirs == version and source_hash(server, plan.systems) == plan.record_hash:
        return PushOutcome(
            "unchanged",
            plan.session_id,
            version,
            plan.record_hash,
            identifiers=plan.emitted,
            fhir_ids=ref,
            server_version=theirs,
        )
    return None


def _is_record_fault(exc: FhirServerError) -> bool:
    """A 4xx refusal of this record (kept as a dead letter) rather than a server failure."""
    if isinstance(exc, FhirUnavailableError | FhirAuthError):
        return False
    return exc.status is not None and 400 <= exc.status < 500


def rejected_outcome(plan: Plan, exc: FhirServerError) -> PushOutcome:
    return PushOutcome(
        "rejected",
        plan.session_id,
        plan.record.record_version,
        plan.record_hash,
        operation_outcome=operation_outcome(exc.issues, base=plan.base),
        error_code=exc.code,
        sent=exc.status is not None,
    )


__all__ = [
    "STATUSES",
    "PushOutcome",
    "Resolution",
    "find_session_procedure",
    "missing_for",
    "plan_record",
    "push_record",
    "pushed_outcome",
    "rejected_outcome",
    "resolve",
]
