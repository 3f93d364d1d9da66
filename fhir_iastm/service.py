"""Wiring: use cases joining the core (records, mapping, profiles) and the edges (client, store).

Layer: wiring — the only module that joins core and edges. Every function receives its store,
client, settings or profile index as parameters; nothing here reads the environment
(:class:`~fhir_iastm.config.Settings` does, once, at start-up).

* :func:`save_record` — store a record with its FHIR resources and search index (one transaction).
* :func:`index_store` — index records stored without their resources (``init-db``, ``reindex``).
* :func:`make_pusher` — ``push.push_record`` bound to a client, shaped as the outbox worker's push.
* :func:`push_many` — push records one by one (the CLI), reporting each outcome.
* :func:`drain_outbox` — run the outbox worker with that pusher until nothing is due.
* :func:`pull` — ``pull.pull_records`` with the configured canonical base.
* :func:`upload_profiles` — PUT every conformance resource of profiles/ to a FHIR server, so its
  ``$validate`` checks our profiles (docs/decisions.md#d1; docs/validation.md#oracle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.config import Settings
from fhir_iastm.errors import FhirConflictError, FhirServerError
from fhir_iastm.facade import resource_set
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.records import record_hash
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import ResourceSet, SaveResult, Store, StoredRecord
from fhir_iastm.sync.pull import PullError, pull_records
from fhir_iastm.sync.push import PushOutcome, push_record
from fhir_iastm.sync.retract import History
from fhir_iastm.sync.worker import WorkerStats, run_worker

Pusher = Callable[[SessionRecord, History | None], PushOutcome]
#: Upload order: what a StructureDefinition or ValueSet refers to goes first.
_UPLOAD_ORDER = {"CodeSystem": 0, "ValueSet": 1, "StructureDefinition": 2, "ConceptMap": 3}


def mapping_settings(settings: Settings | None = None) -> MappingSettings:
    """The mapper's settings of the service's settings (defaults: ``Settings()``)."""
    settings = Settings() if settings is None else settings
    return MappingSettings(
        canonical_base=settings.canonical_base,
        include_cpt=settings.include_cpt,
        claim_us_core=settings.claim_us_core,
    )


def save_record(
    store: Store,
    record: SessionRecord,
    raw: dict[str, Any],
    settings: MappingSettings,
    *,
    actor: str | None,
) -> SaveResult:
    """Store a record (decision 15) with its FHIR resources and search index, in one transaction
    (``POST /api/sessions`` and ``fhir-iastm import``)."""
    digest = record_hash(record)
    resources = resource_set(record, replace(settings, record_hash=digest))
    return store.save_record(record, raw, actor=actor, resources=resources, digest=digest)


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
        record = from_dict(SessionRecord, stored.body)
        mapping = replace(settings, record_hash=stored.record_hash)
        pending.append((stored, resource_set(record, mapping)))
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


def make_client(
    base_url: str, token: str | None = None, *, retry: RetryPolicy | None = None
) -> FhirClient:
    """A FhirClient for one server (bearer ``token`` optional)."""
    return FhirClient(base_url, token=token, retry=retry)


def configured_client(settings: Settings) -> FhirClient | None:
    """The client of ``fhir_base_url`` / ``fhir_token``, or None when no server is configured."""
    if settings.fhir_base_url is None:
        return None
    return make_client(settings.fhir_base_url, settings.fhir_token)


#: The outbox worker's client retries once, briefly: the worker's per-entry backoff and its
#: circuit breaker (``sync.circuit``) wait out a dead server, not each request.
WORKER_RETRY = RetryPolicy(max_attempts=2, base_delay=0.25, max_delay=1.0)


def worker_client(base_url: str, token: str | None = None) -> FhirClient:
    """The client of an outbox worker (``WORKER_RETRY``)."""
    return make_client(base_url, token, retry=WORKER_RETRY)


def make_pusher(client: FhirClient, settings: MappingSettings | None = None) -> Pusher:
    """``push(record, last_pushed) -> PushOutcome`` bound to one client (the worker's ``push``)."""
    settings = settings or MappingSettings()

    def push(record: SessionRecord, last_pushed: History | None) -> PushOutcome:
        return push_record(client, record, settings=settings, last_pushed=last_pushed)

    return push


def push_many(
    client: FhirClient, records: Iterable[SessionRecord], *, settings: MappingSettings | None = None
) -> Iterator[tuple[SessionRecord, PushOutcome | FhirServerError]]:
    """Push records in order, each with its outcome (the CLI's ``push``).

    A session's earlier success in the same run is the history of its next version (local diff,
    docs/decisions.md#d8); otherwise retractions come from the server search. After a server failure
    (unreachable, 5xx, auth) the remaining records are not attempted: they come back with it; a
    409 that outlasted the re-reads concerns that session only.
    """
    push = make_pusher(client, settings)
    history: dict[str, PushOutcome] = {}
    failure: FhirServerError | None = None
    for record in records:
        if failure is None:
            try:
                outcome = push(record, history.get(record.session_id))
            except FhirConflictError as exc:  # contention on this session only: go on
                yield record, exc
                continue
            except FhirServerError as exc:
                failure = exc
            else:
                if outcome.status in ("pushed", "unchanged"):
                    history[record.session_id] = outcome
                yield record, outcome
                continue
        yield record, failure


def drain_outbox(
    store: Store,
    client: FhirClient,
    *,
    settings: MappingSettings | None = None,
    worker_id: str | None = None,
    allow_canonical_base_change: bool = False,
) -> WorkerStats:
    """Run one outbox worker with the real pusher until nothing is due (refusing to push under
    another canonical base than the store's sessions were pushed under, unless allowed)."""
    settings = settings or MappingSettings()
    return run_worker(
        store,
        make_pusher(client, settings),
        worker_id=worker_id,
        once=True,
        canonical_base=settings.base,
        allow_canonical_base_change=allow_canonical_base_change,
    )


def pull(
    client: FhirClient,
    *,
    settings: MappingSettings | None = None,
    session_id: str | None = None,
    patient_mrn: str | None = None,
    clinic_id: str | None = None,
    since: str | None = None,
    page_size: int = 50,
) -> Iterator[SessionRecord | PullError]:
    """Sessions read back from the server (docs/decisions.md#d11), one record or PullError each."""
    return pull_records(
        client,
        session_id=session_id,
        patient_mrn=patient_mrn,
        clinic_id=clinic_id,
        since=since,
        settings=settings,
        page_size=page_size,
    )


def conformance_resources(
    source: ProfileIndex | str | Path, canonical_base: str | None = None
) -> list[dict[str, Any]]:
    """The conformance resources of a ProfileIndex (already rebased) or of a profiles/ folder
    rebased to ``canonical_base``, in upload order."""
    index = source if isinstance(source, ProfileIndex) else load_profiles(source, canonical_base)
    resources = [
        {k: v for k, v in doc.items() if not k.startswith("_")}
        for doc in index.resources
        if doc.get("resourceType") in _UPLOAD_ORDER
    ]
    return sorted(resources, key=lambda r: (_UPLOAD_ORDER[r["resourceType"]], str(r.get("id"))))


def upload_profiles(
    client: FhirClient, source: ProfileIndex | str | Path, canonical_base: str | None = None
) -> list[str]:
    """PUT every profiles/ resource (``Type/id``) to the server; returns what was written."""
    written = []
    for resource in conformance_resources(source, canonical_base):
        client.post_conformance(resource)
        written.append(f"{resource['resourceType']}/{resource['id']}")
    return written


__all__ = [
    "Pusher",
    "configured_client",
    "conformance_resources",
    "drain_outbox",
    "make_client",
    "make_pusher",
    "mapping_settings",
    "index_store",
    "pull",
    "push_many",
    "save_record",
    "upload_profiles",
    "worker_client",
]
