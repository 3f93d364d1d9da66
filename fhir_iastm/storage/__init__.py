"""Edge: the durable store — records with version history, sync state, push outbox, audit.

Layer: edge (SQLAlchemy, Alembic). One code path for SQLite (default
``sqlite:///fhir_iastm.db``) and PostgreSQL (``DATABASE_URL=postgresql://…``). The schema is
created and upgraded by the packaged Alembic migrations: ``Store(url).migrate()``.
The core never imports this package.
"""

from fhir_iastm.errors import LeaseLostError
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
    LastPushed,
    OutboxItem,
    Page,
    SaveResult,
    StoredRecord,
    SyncState,
)

__all__ = [
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
