"""The tables, as SQLAlchemy Core metadata. Alembic's migrations create them.

``tests/test_storage_schema.py`` proves the migrations produce exactly this metadata on SQLite and
PostgreSQL.

The database may hold PHI (the record bodies, the MRN column used by ``?patient=``); logs never do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

#: JSON everywhere, JSONB on PostgreSQL.
JsonColumn = JSON().with_variant(JSONB(), "postgresql")
#: 64-bit ids on PostgreSQL; SQLite needs plain INTEGER for its rowid alias (autoincrement).
Id = BigInteger().with_variant(Integer(), "sqlite")
SessionId = String(64)
Hash = String(64)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


records = Table(
    "records",
    metadata,
    Column("session_id", SessionId, primary_key=True),
    Column("record_version", Integer, nullable=False),
    Column("record_hash", Hash, nullable=False),
    Column("status", String(32), nullable=False),
    Column("clinic_id", String(64), nullable=False),
    Column("patient_mrn", String(64), nullable=False),
    Column("session_start", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # the record_version whose FHIR resources are in fhir_resource (None: not indexed yet)
    Column("indexed_version", Integer, nullable=True),
    # the console's therapist filter (migration 0008; NULL only if a body had none)
    Column("therapist_npi", String(16), nullable=True),
    Index(None, "patient_mrn", "clinic_id"),
    Index(None, "updated_at"),
    # the console's newest-first sessions list, whole or by clinic, therapist or status
    Index(None, "session_start", "session_id"),
    Index(None, "clinic_id", "session_start"),
    Index(None, "therapist_npi", "session_start"),
    Index(None, "status", "session_start"),
)

record_versions = Table(
    "record_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("session_id", SessionId, ForeignKey("records.session_id"), nullable=False),
    Column("record_version", Integer, nullable=False),
    Column("record_hash", Hash, nullable=False),
    Column("body", JsonColumn, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=True),
    # a race can never store two different contents under one version
    UniqueConstraint("session_id", "record_version"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("session_id", SessionId, ForeignKey("records.session_id"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("pushed_version", Integer, nullable=True),
    Column("pushed_hash", Hash, nullable=True),
    Column("pushed_identifiers", JsonColumn, nullable=True),
    Column("fhir_ids", JsonColumn, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_retry_at", UtcDateTime, nullable=True),
    Column("last_pushed_at", UtcDateTime, nullable=True),
    Column("last_error_code", String(64), nullable=True),
    Column("last_outcome", JsonColumn, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "state"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("session_id", SessionId, ForeignKey("records.session_id"), nullable=False),
    Column("record_version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("done_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),
)
# Pending entries only: what claim() scans, and the per-session "is there an earlier one" probe.
Index(
    "ix_outbox_pending",
    outbox.c.next_attempt_at,
    outbox.c.id,
    postgresql_where=outbox.c.done_at.is_(None),
    sqlite_where=outbox.c.done_at.is_(None),
)
Index(
    "ix_outbox_pending_session",
    outbox.c.session_id,
    outbox.c.record_version,
    outbox.c.id,
    postgresql_where=outbox.c.done_at.is_(None),
    sqlite_where=outbox.c.done_at.is_(None),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=True),  # the token's name, never the token
    Column("action", String(32), nullable=False),
    Column("session_id", SessionId, nullable=True),
    Column("outcome", String(64), nullable=True),
    Index(None, "session_id"),
)

# --- the FHIR facade's resources and search indexes (like HAPI's JPA tables) ---------------------
#: UTC timestamps as fixed-width text (``YYYY-MM-DDTHH:MM:SS.ffffff``): ordered alike everywhere.
Bound = String(26)
ResType = String(40)
ResId = String(64)
Param = String(40)

fhir_resource = Table(
    "fhir_resource",
    metadata,
    Column("pk", Id, primary_key=True, autoincrement=True),
    Column("res_type", ResType, nullable=False),
    Column("res_id", ResId, nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", Bound, nullable=False),
    Column("gone", Boolean, nullable=False),
    Column("shared", Boolean, nullable=False),
    # owning session; for a shared resource the session whose data it carries
    Column("session_id", SessionId, nullable=False),
    Column("source_key", String(128), nullable=False),
    Column("content_hash", Hash, nullable=False),
    Column("body", JsonColumn, nullable=False),
    # every lookup by id names the type too: no index on res_id alone (docs/performance.md#indexes)
    UniqueConstraint("res_type", "res_id"),
    Index(None, "session_id"),
    Index(None, "res_type", "last_updated"),
    # an export's keyset batches of one type in pk order (docs/smart-bulk.md#export-speed)
    Index(None, "res_type", "pk"),
)

fhir_resource_version = Table(
    "fhir_resource_version",
    metadata,
    Column("res_pk", Id, ForeignKey("fhir_resource.pk"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("last_updated", Bound, nullable=False),
    Column("gone", Boolean, nullable=False),
    # NULL: the same body as the fhir_resource row (the current one, stored once)
    Column("body", JsonColumn, nullable=True),
)

def _index_table(name: str, *columns: Column[Any], indexes: tuple[tuple[str, ...], ...]) -> Table:
    """A search index table: rows of (resource row, resource type, parameter, values…)."""
    return Table(
        name,
        metadata,
        Column("res_pk", Id, ForeignKey("fhir_resource.pk"), nullable=False),
        Column("res_type", ResType, nullable=False),
        Column("param", Param, nullable=False),
        *columns,
        *(Index(None, *cols) for cols in (*indexes, ("res_pk",))),
    )


fhir_token = _index_table(
    "fhir_token",
    Column("system", String(200), nullable=False),
    Column("code", String(200), nullable=False),
    indexes=(("res_type", "param", "code", "system"),),
)
fhir_string = _index_table(
    "fhir_string",
    Column("norm", String(200), nullable=False),
    Column("exact", String(200), nullable=False),
    indexes=(("res_type", "param", "norm"),),
)
fhir_date = _index_table(
    "fhir_date",
    Column("ordinal", Integer, nullable=False),
    Column("low", Bound, nullable=False),
    Column("high", Bound, nullable=False),
    indexes=(("res_type", "param", "low"), ("res_type", "param", "high")),
)
fhir_link = _index_table(
    "fhir_link",
    Column("target_type", ResType, nullable=False),
    Column("target_id", ResId, nullable=False),
    indexes=(("target_id", "param", "res_type"),),
)

INDEX_TABLES = (fhir_token, fhir_string, fhir_date, fhir_link)

#: The canonical base the store's sessions were pushed under (one row, id 1): a worker configured
#: with another base refuses to push (docs/canonical-base.md).
pushed_canonical_base = Table(
    "pushed_canonical_base",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("canonical_base", String(2048), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

# --- SMART Backend Services: registered clients, assertion ids seen, our signing key -----------
auth_client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("jwks_url", String(2000), nullable=True),
    Column("jwks", JsonColumn, nullable=True),
    Column("scope", String(2000), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

auth_jti = Table(
    "auth_jti",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "expires_at"),
)

auth_key = Table(
    "auth_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("pem", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- Bulk Data $export jobs (run by `fhir-iastm export-worker`) --------------------------------
export_job = Table(
    "export_job",
    metadata,
    Column("id", String(32), primary_key=True),
    # who asked: the SMART client_id, or the static token's digest / "open"
    Column("owner", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # queued running done failed cancelled expired
    Column("request_url", String(4000), nullable=False),
    Column("params", JsonColumn, nullable=False),
    Column("requires_token", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("transaction_time", UtcDateTime, nullable=True),
    Column("progress", String(200), nullable=True),
    Column("last_polled_at", UtcDateTime, nullable=True),
    Column("manifest", JsonColumn, nullable=True),
    Column("error", JsonColumn, nullable=True),
    Index(None, "status", "created_at"),
)
# one active (queued or running) export per owner: a second concurrent kick-off fails to insert
Index(
    "ix_export_job_active_owner",
    export_job.c.owner,
    unique=True,
    postgresql_where=export_job.c.status.in_(("queued", "running")),
    sqlite_where=export_job.c.status.in_(("queued", "running")),
)

# --- the facade's AuditEvents (docs/audit.md) ------------------------------------------------
#: One row per audited request: the AuditEvent body, its time and agent (docs/audit.md).
audit_event = Table(
    "audit_event",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("recorded", Bound, nullable=False),
    Column("agent", String(64), nullable=False),
    Column("body", JsonColumn, nullable=False),
    Index(None, "recorded"),
    Index(None, "agent"),
)

#: The references an AuditEvent's entities name (``entity`` / ``patient`` search).
audit_event_entity = Table(
    "audit_event_entity",
    metadata,
    Column("event_seq", Id, ForeignKey("audit_event.seq", ondelete="CASCADE"), nullable=False),
    Column("ref_type", ResType, nullable=False),
    Column("ref_id", ResId, nullable=False),
    Index(None, "ref_type", "ref_id"),
    Index(None, "event_seq"),
)


__all__ = ["INDEX_TABLES", "auth_client", "auth_jti", "auth_key", "export_job", "fhir_date",
           "fhir_link", "fhir_resource", "fhir_resource_version", "fhir_string", "fhir_token",
           "audit", "audit_event", "audit_event_entity", "metadata", "outbox",
           "pushed_canonical_base", "record_versions", "records", "sync_state", "UtcDateTime"]
