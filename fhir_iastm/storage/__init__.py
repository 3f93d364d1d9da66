"""EDGE (SQLAlchemy, Alembic): the durable store — records with version history, sync state, push
outbox, audit, the FHIR resources and their search index. The only package that runs SQL; it
imports ``fhir_iastm.records`` (the record hash) and ``fhir_iastm.errors``.

One code path for SQLite (default
``sqlite:///fhir_iastm.db``) and PostgreSQL (``DATABASE_URL=postgresql://…``). The schema is
created and upgraded by the packaged Alembic migrations: ``Store(url).migrate()``.
"""

from fhir_iastm.errors import LeaseLostError
from fhir_iastm.storage.audit_events import AuditQuery, AuditRow, AuditStore
from fhir_iastm.storage.auth import AuthStore, ClientRow
from fhir_iastm.storage.console import ConsoleStore, RowPage, SessionFilter, SessionRow
from fhir_iastm.storage.engine import (
    DatabaseError,
    MissingDatabaseError,
    database_reason,
    database_unavailable,
    missing_sqlite_file,
)
from fhir_iastm.storage.exports import ExportJob, ExportStore, PatientScope, Snapshot, group_members
from fhir_iastm.storage.fhir_types import (
    Chain,
    Condition,
    DateMatch,
    Include,
    RefMatch,
    ResourceSet,
    ResourceWrite,
    SearchQuery,
    SearchResult,
    Sort,
    StoredResource,
    StringMatch,
    TokenMatch,
)
from fhir_iastm.storage.store import DEFAULT_URL, Store, utc_now
from fhir_iastm.storage.types import (
    SYNC_STATES,
    LastPushed,
    OutboxItem,
    Page,
    SaveResult,
    StoredRecord,
    SyncState,
)

__all__ = [
    "AuditQuery",
    "AuditRow",
    "AuditStore",
    "SYNC_STATES",
    "AuthStore",
    "ClientRow",
    "ConsoleStore",
    "RowPage",
    "SessionFilter",
    "SessionRow",
    "ExportJob",
    "ExportStore",
    "PatientScope",
    "Snapshot",
    "group_members",
    "Chain",
    "Condition",
    "DateMatch",
    "Include",
    "RefMatch",
    "ResourceSet",
    "ResourceWrite",
    "SearchQuery",
    "SearchResult",
    "Sort",
    "StoredResource",
    "StringMatch",
    "TokenMatch",
    "DEFAULT_URL",
    "DatabaseError",
    "MissingDatabaseError",
    "database_reason",
    "database_unavailable",
    "missing_sqlite_file",
    "LastPushed",
    "LeaseLostError",
    "OutboxItem",
    "Page",
    "SaveResult",
    "Store",
    "StoredRecord",
    "SyncState",
    "utc_now",
]
