"""The use cases: every path from an entry point (API, CLI, worker) to the core and the edges.

The API, the CLI and the outbox worker call these functions; none of them calls the core around
them or builds SQL. Every function receives its store, client, settings or profile index as
parameters; only :func:`build` turns the settings into those collaborators, and nothing here
reads the environment (:class:`~fhir_iastm.config.Settings` does, once, at start-up).

* :func:`save_record` — validate one record body and store it with its FHIR resources and search
  index, queueing its push (one transaction).
* :func:`import_records` — store many record bodies (``fhir-iastm import``): validated and mapped
  in worker processes, written several per transaction, each still all-or-nothing.
* :func:`stored_bundle` — the FHIR Bundle of a stored record (rebuilt, not re-validated).
* :func:`index_store` — index records stored without their resources (``init-db``, ``reindex``).
* :func:`export` / :func:`export_sessions` — every stored session's FHIR resources, streamed.
* :func:`push_many`, :func:`drain_outbox`, :func:`pull` — the use cases that talk to FHIR
  servers, written in ``fhir_iastm.sync_service`` and re-exported here; likewise the dry runs
  (``fhir_iastm.plan_service``) and :func:`upload_profiles` (``fhir_iastm.profile_service``).
* :func:`build` — the collaborators of the HTTP app (store, profile index, mapping settings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_iastm.config import Settings
from fhir_iastm.errors import InvalidRecordError, Issue
from fhir_iastm.facade import resource_set, stored_resources
from fhir_iastm.import_service import (  # re-exported: one place for the entry points
    amended_resources,
    amended_write,
    import_records,
    prepare,
    prepare_record,
)
from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.plan_service import (  # re-exported: one place for the entry points
    DryRun,
    apply_plan,
    apply_stored_plan,
    dry_run_many,
    dry_run_stored,
    plan_id,
    readable_patch,
)
from fhir_iastm.profile_service import (  # re-exported
    NOT_FOR_SERVERS,
    conformance_resources,
    upload_profiles,
)
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import (
    DatabaseError,
    MissingDatabaseError,
    ResourceSet,
    SaveResult,
    Store,
    StoredRecord,
    database_reason,
    database_unavailable,
    missing_sqlite_file,
)
from fhir_iastm.sync.pull import PullError
from fhir_iastm.sync_service import (  # re-exported: one place for the entry points
    WORKER_RETRY,
    Pusher,
    configured_client,
    drain_outbox,
    generate_signing_key,
    make_client,
    make_pusher,
    pull,
    push_many,
    sandbox_clean,
    sandbox_tag,
    stored_versions,
    target_auth,
    target_settings,
    worker_client,
)
from fhir_iastm.target_service import check_server, suggested_target_toml  # re-exported


@dataclass(frozen=True)
class Collaborators:
    """What the HTTP app works with, built once from the configuration by :func:`build`."""

    store: Store
    profiles: ProfileIndex
    mapping: MappingSettings


def build(settings: Settings) -> Collaborators:
    """The app's store (schema migrated), compiled profiles (rebased to the configured canonical
    base) and mapping settings."""
    mapping = mapping_settings(settings)
    return Collaborators(
        store=open_store(settings.database_url),
        profiles=profile_index(settings.profiles_dir, mapping.base),
        mapping=mapping,
    )


def open_store(database_url: str, *, existing: bool = False) -> Store:
    """The store at ``database_url`` with its schema created or upgraded. With ``existing``, a
    SQLite file that is not there raises ``MissingDatabaseError`` instead of becoming a new empty
    database (a mistyped path must not look like an empty store)."""
    missing = missing_sqlite_file(database_url) if existing else None
    if missing is not None:
        raise MissingDatabaseError(
            f"no database at {missing!r} (create one with init-db or import)"
        )
    store = Store(database_url)
    store.migrate()
    return store


@lru_cache(maxsize=4)
def _profiles(
    path: str, fingerprint: tuple[tuple[str, float], ...], canonical_base: str
) -> ProfileIndex:
    return load_profiles(Path(path), canonical_base)


def profile_index(path: Path, canonical_base: str) -> ProfileIndex:
    """The compiled profiles of a folder rebased to ``canonical_base``: compiled once per process
    until its files change."""
    fingerprint = tuple(sorted((p.name, p.stat().st_mtime) for p in path.glob("*.json")))
    return _profiles(str(path.resolve()), fingerprint, canonical_base)


@dataclass(frozen=True)
class Saved:
    """What :func:`save_record` did, and the record's warnings (never a reason to refuse it)."""

    result: SaveResult
    warnings: list[Issue]


def save_record(
    store: Store, body: Any, settings: MappingSettings, *, actor: str | None
) -> Saved:
    """Validate one record body and store it as accepted (docs/decisions.md#d15) with its FHIR
    resources and search index, queueing its push — one transaction (``POST /api/sessions`` and
    ``fhir-iastm import``).

    Raises ``InvalidRecordError`` naming every error; ``ConflictRecordError`` (from the store)
    for the same version with other content or a lower version.
    """
    prepared, warnings = prepare(body, settings)
    if isinstance(prepared, InvalidRecordError):
        raise prepared
    record, _body, resources, digest = amended_write(store, prepared, settings)
    result = store.save_record(record, body, actor=actor, resources=resources, digest=digest)
    return Saved(result, warnings)


def _rebuilt(
    stored: StoredRecord, settings: MappingSettings
) -> tuple[SessionRecord, MappingSettings]:
    """A stored record version and its mapping settings. The body passed
    ``records.check_record`` when it was saved: it is rebuilt without a second validation, and the
    stored hash is the one ``to_fhir`` would compute."""
    return from_dict(SessionRecord, stored.body), replace(settings, record_hash=stored.record_hash)


def stored_bundle(stored: StoredRecord, settings: MappingSettings) -> dict[str, Any]:
    """The transaction Bundle of a stored record version (rebuilt, not re-validated)."""
    return to_fhir(*_rebuilt(stored, settings))


def export_sessions(
    store: Store, settings: MappingSettings
) -> Iterator[Iterable[dict[str, Any]]]:
    """Each stored session's FHIR resources (stable logical ids), one session at a time."""
    for stored in store.iter_records():
        yield stored_resources(stored_bundle(stored, settings), copy_=False)


def export(store: Store, settings: MappingSettings) -> Iterator[dict[str, Any]]:
    """Every stored session's FHIR resources (stable logical ids), streamed in session order."""
    for resources in export_sessions(store, settings):
        yield from resources


def mapping_settings(settings: Settings | None = None) -> MappingSettings:
    """The mapper's settings of the service's settings (defaults: ``Settings()``)."""
    settings = Settings() if settings is None else settings
    target = target_settings(settings)
    return MappingSettings(
        canonical_base=settings.canonical_base,
        include_cpt=settings.include_cpt,
        claim_us_core=settings.claim_us_core,
        performed_as_datetime=target.performed_as_datetime,
        strip_profiles=target.strip_profiles,
        pain_category=target.pain_category,
    )


def index_store(
    store: Store,
    settings: MappingSettings,
    *,
    everything: bool = False,
    progress: Callable[[int], None] | None = None,
    batch: int = 200,
) -> int:
    """Write the FHIR resources of every record not indexed at its current version (``init-db``
    back-fill), or of every record (``everything``: ``reindex`` after a mapping change).
    Stored bodies were validated when saved: they are rebuilt, not re-validated. Returns how many
    records were indexed; ``progress(n)`` after each batch."""
    done = 0
    pending: list[tuple[StoredRecord, ResourceSet]] = []
    for stored in store.records_to_index(everything=everything, batch=batch):
        record, with_hash = _rebuilt(stored, settings)
        resources = amended_resources(
            store, record, resource_set(record, with_hash), stored.record_hash, settings
        )
        pending.append((stored, resources))
        if len(pending) == batch:
            store.write_index(pending)
            done += len(pending)
            pending = []
            if progress is not None:
                progress(done)
    if pending:
        store.write_index(pending)
        done += len(pending)
        if progress is not None:
            progress(done)
    return done

__all__ = [
    "Collaborators",
    "DatabaseError",
    "database_unavailable",
    "MissingDatabaseError",
    "PullError",
    "Pusher",
    "NOT_FOR_SERVERS",
    "Saved",
    "build",
    "configured_client",
    "conformance_resources",
    "database_reason",
    "drain_outbox",
    "check_server",
    "suggested_target_toml",
    "DryRun",
    "apply_plan",
    "apply_stored_plan",
    "plan_id",
    "dry_run_many",
    "dry_run_stored",
    "readable_patch",
    "export",
    "export_sessions",
    "import_records",
    "index_store",
    "make_client",
    "make_pusher",
    "mapping_settings",
    "open_store",
    "profile_index",
    "prepare_record",
    "stored_versions",
    "target_settings",
    "pull",
    "push_many",
    "save_record",
    "stored_bundle",
    "upload_profiles",
    "WORKER_RETRY",
    "generate_signing_key",
    "sandbox_clean",
    "sandbox_tag",
    "target_auth",
    "worker_client",
]
