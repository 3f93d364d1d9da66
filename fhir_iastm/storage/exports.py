"""Bulk Data export jobs, and the consistent read snapshot an export reads from.

``ExportStore(store)`` keeps the jobs (one active job per owner, enforced by a partial unique
index). :meth:`ExportStore.snapshot` opens ONE read transaction and fixes ``transaction_time``
so that the export holds exactly the resources written up to it:

* SQLite serializes writers: holding the write lock for an instant (``BEGIN IMMEDIATE`` on a
  second connection) while the clock is read and the reader's snapshot is taken means every
  write before ``transaction_time`` is visible and every write after it is not.
* PostgreSQL: the reader runs in REPEATABLE READ; ``transaction_time`` is the earlier of now and
  the start of the oldest writing transaction still open at that moment, and rows are read with
  ``last_updated <= transaction_time`` — a write still in flight is left to the next ``_since``
  export instead of being lost between two exports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    insert,
    literal_column,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError

from fhir_iastm.storage.fhir_search import condition
from fhir_iastm.storage.fhir_types import Condition, StoredResource
from fhir_iastm.storage.fhir_write import bound_text
from fhir_iastm.storage.schema import (
    export_job,
    fhir_link,
    fhir_resource,
    record_versions,
    records,
)
from fhir_iastm.storage.types import StoredRecord

if TYPE_CHECKING:
    from fhir_iastm.storage.store import Store

R = fhir_resource
L = fhir_link
J = export_job
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class ExportJob:
    """One export job as stored."""

    id: str
    owner: str
    status: str
    request_url: str
    params: dict[str, Any]
    requires_token: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    transaction_time: datetime | None
    progress: str | None
    last_polled_at: datetime | None
    manifest: dict[str, Any] | None
    error: dict[str, Any] | None


def _job(row: Any) -> ExportJob:
    return ExportJob(**{c.name: getattr(row, c.name) for c in J.columns})


@dataclass(frozen=True)
class PatientScope:
    """Whose compartments to read: explicit Patient ids and/or the members of one Group
    (an Organization id); None in both: every patient."""

    ids: tuple[str, ...] | None = None
    organization: str | None = None


class ExportStore:
    """Export jobs in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, job_id: str, owner: str, request_url: str, params: dict[str, Any],
               requires_token: bool) -> ExportJob | None:
        """Queue a job; None when the owner already has an active one."""
        row = {"id": job_id, "owner": owner, "status": "queued", "request_url": request_url,
               "params": params, "requires_token": requires_token,
               "created_at": self.store.clock(), "progress": "queued"}
        try:
            with self.store.write() as conn:
                conn.execute(insert(J), row)
        except IntegrityError:
            return None
        return self.get(job_id)

    def active(self, owner: str) -> ExportJob | None:
        """The owner's queued or running job."""
        with self.store.read() as conn:
            row = conn.execute(select(J).where(J.c.owner == owner,
                                               J.c.status.in_(ACTIVE))).first()
        return None if row is None else _job(row)

    def get(self, job_id: str) -> ExportJob | None:
        """A job by id."""
        with self.store.read() as conn:
            row = conn.execute(select(J).where(J.c.id == job_id[:32])).first()
        return None if row is None else _job(row)

    def polled(self, job_id: str) -> datetime | None:
        """Record a status poll now; the time of the previous poll."""
        with self.store.write() as conn:
            before = conn.execute(select(J.c.last_polled_at).where(J.c.id == job_id)
                                  .with_for_update()).scalar()
            conn.execute(update(J).where(J.c.id == job_id)
                         .values(last_polled_at=self.store.clock()))
        return before

    def claim(self) -> ExportJob | None:
        """The oldest queued job, now running (FOR UPDATE SKIP LOCKED on PostgreSQL)."""
        with self.store.write() as conn:
            row = conn.execute(select(J.c.id).where(J.c.status == "queued")
                               .order_by(J.c.created_at, J.c.id).limit(1)
                               .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            conn.execute(update(J).where(J.c.id == row.id).values(
                status="running", started_at=self.store.clock(), progress="started"))
        return self.get(row.id)

    def progress(self, job_id: str, progress: str) -> str | None:
        """Report progress of a running job; its status (``cancelled``: stop)."""
        with self.store.write() as conn:
            conn.execute(update(J).where(J.c.id == job_id, J.c.status == "running")
                         .values(progress=progress[:200]))
            return conn.execute(select(J.c.status).where(J.c.id == job_id)).scalar()

    def finish(self, job_id: str, *, status: str, expires_at: datetime,
               transaction_time: datetime | None = None, manifest: dict[str, Any] | None = None,
               error: dict[str, Any] | None = None) -> None:
        """A running job ends (``done`` with its manifest, or ``failed`` with an outcome)."""
        with self.store.write() as conn:
            conn.execute(update(J).where(J.c.id == job_id, J.c.status == "running").values(
                status=status, finished_at=self.store.clock(), expires_at=expires_at,
                transaction_time=transaction_time, manifest=manifest, error=error,
                progress=status))

    def cancel(self, job_id: str) -> bool:
        """Cancel or delete a job (its files are removed by the worker); False if unknown."""
        with self.store.write() as conn:
            done = conn.execute(update(J).where(J.c.id == job_id[:32],
                                                J.c.status.not_in(("cancelled", "expired")))
                                .values(status="cancelled", expires_at=self.store.clock()))
            return bool(done.rowcount)

    def to_clean(self, now: datetime) -> list[ExportJob]:
        """Finished or cancelled jobs whose files have expired."""
        with self.store.read() as conn:
            rows = conn.execute(select(J).where(J.c.status.in_(("done", "failed", "cancelled")),
                                                J.c.expires_at <= now))
            return [_job(r) for r in rows]

    def mark_expired(self, job_id: str) -> None:
        """The job's files are gone: every poll now answers 404."""
        with self.store.write() as conn:
            conn.execute(update(J).where(J.c.id == job_id).values(status="expired"))

    def purge(self, before: datetime) -> int:
        """Delete expired job rows older than ``before``."""
        with self.store.write() as conn:
            return int(conn.execute(delete(J).where(J.c.status == "expired",
                                                    J.c.created_at < before)).rowcount)

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One consistent read of the resources (see the module doc)."""
        engine = self.store.engine
        if engine.dialect.name == "sqlite":
            with ExitStack() as stack:
                lock = stack.enter_context(engine.connect())
                lock.begin()  # BEGIN IMMEDIATE: no writer is in flight now
                conn = stack.enter_context(self.store.read())
                when = self.store.clock()
                conn.execute(select(R.c.pk).limit(1)).all()  # the read snapshot starts here
                lock.rollback()
                yield Snapshot(conn, when)
            return
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
                conn.begin():
            oldest = conn.execute(text(
                "SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid() AND datname = current_database()")).scalar()
            when = self.store.clock()
            yield Snapshot(conn, min(when, oldest) if oldest is not None else when)


class Snapshot:
    """Reads of one export, all in one transaction, up to ``transaction_time``."""

    def __init__(self, conn: Connection, transaction_time: datetime) -> None:
        self.conn = conn
        self.transaction_time = transaction_time
        self._until = bound_text(transaction_time)

    def _window(self, since: datetime | None) -> Any:
        cut = R.c.last_updated <= self._until
        return cut if since is None else and_(cut, R.c.last_updated > bound_text(since))

    def _patients(self, scope: PatientScope) -> Any:
        """Patient ids of a scope, as a subquery (None: no restriction)."""
        if scope.organization is None and scope.ids is None:
            return None
        p = R.alias("scope_patient")
        stmt = select(p.c.res_id).where(p.c.res_type == "Patient", ~p.c.gone)
        if scope.organization is not None:
            stmt = stmt.where(p.c.pk.in_(_members(scope.organization)))
        if scope.ids is not None:
            stmt = stmt.where(p.c.res_id.in_(scope.ids))
        return stmt

    def _where(self, rtype: str, since: datetime | None,
               filters: Sequence[Sequence[Condition]], scope: PatientScope | None) -> list[Any]:
        """The conditions selecting the current ``rtype`` rows an export reads (see
        :meth:`resources`)."""
        where = [R.c.res_type == rtype, ~R.c.gone, self._window(since)]
        if filters:
            where.append(or_(*(and_(*(condition(R, rtype, c) for c in conds))
                               for conds in filters)))
        patients = self._patients(scope) if scope is not None else None
        if patients is not None:
            if rtype == "Patient":
                where.append(R.c.res_id.in_(patients))
            else:
                where.append(R.c.pk.in_(select(L.c.res_pk).where(
                    L.c.res_type == rtype, L.c.param == "patient", L.c.target_type == "Patient",
                    L.c.target_id.in_(patients))))
        return where

    def resources(self, rtype: str, *, since: datetime | None = None,
                  filters: Sequence[Sequence[Condition]] = (),
                  scope: PatientScope | None = None, batch: int = 1000
                  ) -> Iterator[StoredResource]:
        """Current resources of a type in pk order, in keyset batches; ``filters``: OR of ANDs
        (``_typeFilter``); ``scope``: only the compartments of those patients."""
        for row in self._keyset(_RESOURCE_COLUMNS, self._where(rtype, since, filters, scope),
                                batch):
            yield _stored(row)

    def lines(self, rtype: str, *, since: datetime | None = None,
              filters: Sequence[Sequence[Condition]] = (),
              scope: PatientScope | None = None, batch: int = 1000) -> Iterator[str]:
        """As :meth:`resources`, each resource as the JSON text an export writes (the stored
        text with ``id``, ``meta.versionId`` and ``meta.lastUpdated`` set by the database,
        :func:`export_text`; no parse in Python)."""
        line = export_text(self.conn.dialect.name).label("line")
        for row in self._keyset([R.c.pk, line], self._where(rtype, since, filters, scope),
                                batch):
            yield str(row.line)

    def _keyset(self, columns: Sequence[Any], where: Sequence[Any], batch: int
                ) -> Iterator[Any]:
        """Rows of ``select(columns).where(where)`` in pk order, ``batch`` a query (each batch
        starts after the last pk of the one before: index ``(res_type, pk)``)."""
        stmt = select(*columns).where(*where)
        after = 0
        while True:
            rows = self.conn.execute(stmt.where(R.c.pk > after).order_by(R.c.pk)
                                     .limit(batch)).all()
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].pk

    def lines_by_ids(self, rtype: str, ids: Sequence[str], *, since: datetime | None = None,
                     batch: int = 500) -> Iterator[str]:
        """Current resources of a type among ``ids`` (referenced shared resources), as the JSON
        text an export writes (see :meth:`lines`)."""
        line = export_text(self.conn.dialect.name).label("line")
        ordered = sorted(ids)
        for start in range(0, len(ordered), batch):
            chunk = ordered[start:start + batch]
            for row in self.conn.execute(
                    select(R.c.pk, line).where(R.c.res_type == rtype, R.c.res_id.in_(chunk),
                                               ~R.c.gone, self._window(since)).order_by(R.c.pk)
            ).all():
                yield str(row.line)

    def sessions_of(self, types: Sequence[str], since: datetime | None,
                    filters: dict[str, list[tuple[Condition, ...]]],
                    scope: PatientScope | None) -> Any:
        """The session ids of the session-owned resources an export of ``types`` reads, as a
        subquery (``includeAssociatedData``: whose Provenances go with them)."""
        parts = [select(R.c.session_id).where(*self._where(t, since, filters.get(t, ()), scope))
                 for t in types]
        return union(*parts) if len(parts) > 1 else parts[0]

    def session_records(self, *, since: datetime | None = None,
                        scope: PatientScope | None = None, sessions: Any = None,
                        batch: int = 500) -> Iterator[StoredRecord]:
        """The current stored record version of each session whose resources are indexed at it
        and whose Encounter is current (in ``scope``, among ``sessions`` if given), stored up to
        transaction_time (after ``since``), in session order. ``received_at`` is when that
        version was stored."""
        enc = R.alias("session_encounter")
        rec, rv = records, record_versions
        # EXISTS per record by the session_id index, not IN (a list of every Encounter built
        # again for each batch: quadratic in the store's size); ``|| ''`` keeps SQLite from
        # walking every Encounter by the res_type index instead
        live = select(enc.c.pk).where(enc.c.session_id == rec.c.session_id,
                                      enc.c.res_type.concat("") == "Encounter", ~enc.c.gone)
        patients = self._patients(scope) if scope is not None else None
        if patients is not None:
            live = live.where(enc.c.pk.in_(select(L.c.res_pk).where(
                L.c.res_type == "Encounter", L.c.param == "patient",
                L.c.target_type == "Patient", L.c.target_id.in_(patients))))
        stmt = (select(rec.c.session_id, rec.c.record_version, rec.c.record_hash, rec.c.status,
                       rv.c.body, rv.c.received_at)
                .join(rv, and_(rv.c.session_id == rec.c.session_id,
                               rv.c.record_version == rec.c.record_version))
                .where(rec.c.indexed_version == rec.c.record_version,
                       live.exists(), rv.c.received_at <= self.transaction_time))
        if since is not None:
            stmt = stmt.where(rv.c.received_at > since)
        if sessions is not None:
            stmt = stmt.where(rec.c.session_id.in_(sessions))
        after = ""
        while True:
            rows = self.conn.execute(stmt.where(rec.c.session_id > after)
                                     .order_by(rec.c.session_id).limit(batch)).all()
            for row in rows:
                yield StoredRecord(row.session_id, row.record_version, row.record_hash, row.body,
                                   row.received_at, row.status, row.record_version)
            if len(rows) < batch:
                return
            after = rows[-1].session_id

    def deleted(self, types: Sequence[str], since: datetime,
                scope: PatientScope | None = None) -> list[tuple[str, str]]:
        """(type, id) of resources retracted after ``since`` (up to transaction_time); with a
        scope, only those of sessions whose Encounter belongs to those patients."""
        stmt = select(R.c.res_type, R.c.res_id).where(R.c.res_type.in_(types), R.c.gone,
                                                      self._window(since))
        patients = self._patients(scope) if scope is not None else None
        if patients is not None:
            enc = R.alias()
            sessions = select(enc.c.session_id).where(enc.c.res_type == "Encounter", enc.c.pk.in_(
                select(L.c.res_pk).where(L.c.res_type == "Encounter", L.c.param == "patient",
                                         L.c.target_id.in_(patients))))
            stmt = stmt.where(R.c.session_id.in_(sessions))
        return [(r.res_type, r.res_id) for r in self.conn.execute(stmt.order_by(R.c.pk))]


_RESOURCE_COLUMNS = (R.c.pk, R.c.res_type, R.c.res_id, R.c.version, R.c.last_updated, R.c.gone,
                     R.c.body)


def _stored(row: Any) -> StoredResource:
    return StoredResource(row.pk, row.res_type, row.res_id, row.version, row.last_updated,
                          bool(row.gone), row.body)


def export_text(dialect: str) -> Any:
    """SQL for a row's resource as an export writes it: ``resourceType``, ``id``, ``meta`` (the
    stored one with ``versionId`` and ``lastUpdated``), then the other members of the stored
    body in their order — the JSON of ``facade.bundle.with_meta`` built by the database's JSON
    functions, so that an export copies text instead of parsing and writing every resource.
    SQLite keeps the stored (compact) text of every value, so the line is the same text the
    Python path writes; PostgreSQL writes ``jsonb`` text (``", "`` and ``": "`` separators, its
    key order inside objects): the same JSON, not the same bytes."""
    if dialect == "sqlite":
        meta = ("json_set(coalesce(json_extract(body, '$.meta'), '{}'), '$.versionId',"
                " CAST(version AS TEXT), '$.lastUpdated', last_updated || 'Z')")
        rest = "json_remove(body, '$.resourceType', '$.id', '$.meta')"
        head = ("'{\"resourceType\":' || json_quote(res_type) || ',\"id\":' || json_quote(res_id)"
                " || ',\"meta\":' || " + meta)
        # the other members: "{}" -> "}", "{...}" -> ",...}"
        tail = f"CASE WHEN {rest} = '{{}}' THEN '}}' ELSE ',' || substr({rest}, 2) END"
    else:
        meta = ("(coalesce(body -> 'meta', '{}'::jsonb) || jsonb_build_object('versionId',"
                " version::text, 'lastUpdated', last_updated || 'Z'))::text")
        head = ("'{\"resourceType\":' || to_json(res_type)::text || ',\"id\":'"
                " || to_json(res_id)::text || ',\"meta\":' || " + meta)
        # the same with the other members written once (jsonb's "-" and text output are costly)
        tail = ("ltrim(regexp_replace((body - ARRAY['resourceType', 'id', 'meta'])::text,"
                " '^\\{(?!\\})', ','), '{')")
    return literal_column(f"{head} || {tail}")


def _members(organization: str) -> Any:
    """Rows (pk) of the Patients whose managingOrganization is the clinic."""
    return select(L.c.res_pk).where(L.c.res_type == "Patient", L.c.param == "organization",
                                    L.c.target_type == "Organization",
                                    L.c.target_id == organization)


def group_members(store: Store, organization: str) -> list[tuple[str, str]]:
    """(Patient id, lastUpdated) of the patients a clinic (Organization id) manages."""
    with store.read() as conn:
        rows = conn.execute(
            select(R.c.res_id, R.c.last_updated).where(
                R.c.res_type == "Patient", ~R.c.gone, R.c.pk.in_(_members(organization)))
            .order_by(R.c.res_id))
        return [(r.res_id, r.last_updated) for r in rows]


__all__ = ["ExportJob", "ExportStore", "PatientScope", "Snapshot", "export_text", "group_members"]
