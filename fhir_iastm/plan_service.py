"""The dry-run use cases (docs/targets.md#dry-run): what a push would write, planned against the
server as it is now, and the application of a plan checked again. ``fhir_iastm.service``
re-exports them.

* :func:`dry_run_many` — the plan of each record of a run (the CLI's ``push --dry-run``).
* :func:`dry_run_stored` — the plan of a stored session (``POST .../push?dry_run=true``).
* :func:`apply_stored_plan` — apply a stored session's plan if it still holds
  (``POST .../push?plan=...``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from fhir_iastm.client import FhirClient
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError, FhirServerError, PlanChangedError
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import Store
from fhir_iastm.sync.diff import readable as readable_patch
from fhir_iastm.sync.dryrun import DryRun, dry_run, plan_id
from fhir_iastm.sync.dryrun import apply_dry_run as apply_plan
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.ports import LastPushedView
from fhir_iastm.sync_service import amended_bundle, configured_client, stored_versions


def dry_run_many(
    client: FhirClient,
    records: Iterable[SessionRecord],
    *,
    settings: MappingSettings | None = None,
    last_pushed: Callable[[str], LastPushedView | None] | None = None,
) -> Iterator[tuple[SessionRecord, DryRun | FhirServerError]]:
    """The push's plan for each record against the server as it is now, writing nothing
    (docs/targets.md#dry-run). Each version is planned on its own: a later version of the same
    session in the same run is planned as if the earlier one had not been pushed. After a server
    failure the remaining records come back with it."""
    settings = settings or MappingSettings()
    seen: dict[str, list[SessionRecord]] = {}
    failure: FhirServerError | None = None
    for record in records:
        if failure is None:
            try:
                bundle = amended_bundle(record, settings, lambda r: seen.get(r.session_id, []))
                history = last_pushed(record.session_id) if last_pushed else None
                plan = dry_run(client, record, settings=settings, last_pushed=history,
                               bundle=bundle)
            except FhirServerError as exc:
                failure = exc
            else:
                seen.setdefault(record.session_id, []).append(record)
                yield record, plan
                continue
        yield record, failure


def dry_run_stored(
    store: Store, settings: Settings, mapping: MappingSettings, session_id: str
) -> DryRun:
    """The plan of pushing a stored session's current version to the configured server
    (``POST /api/sessions/{id}/push?dry_run=true``, docs/targets.md#dry-run); writes nothing."""
    with _plans_client(settings) as client:
        return _stored_dry_run(client, store, mapping, session_id)


def apply_stored_plan(
    store: Store, settings: Settings, mapping: MappingSettings, session_id: str, planned: str
) -> DryRun | PushOutcome:
    """Apply the dry-run plan ``planned`` (its :func:`~fhir_iastm.sync.dryrun.plan_id`) of a
    stored session (``POST /api/sessions/{id}/push?plan=...``, docs/targets.md#dry-run).

    The session is dry-run again: a different plan (the server or the record changed) raises
    ``PlanChangedError`` and nothing is written. The same plan is written with ``If-Match`` on
    the versions it resolved, so a change in between is a ``FhirConflictError`` (HAPI rolls the
    transaction back), never an overwrite. A plan with nothing to write (``unchanged``) comes
    back as it is; one that cannot be written (``superseded``, ``rejected``) is a conflict."""
    with _plans_client(settings) as client:
        run = _stored_dry_run(client, store, mapping, session_id)
        now = plan_id(run)
        if now != planned:
            raise PlanChangedError(
                f"plan {planned} no longer holds: the server or the record changed since the dry "
                f"run (it now plans {now}, status {run.status}); nothing was written, dry-run "
                "again")
        if run.status == "unchanged":
            return run
        if run.transaction is None:
            raise PlanChangedError(f"plan {planned} writes nothing: its status is {run.status}"
                                   + (f" ({run.note})" if run.note else ""))
        return apply_plan(client, run)


def _plans_client(settings: Settings) -> FhirClient:
    client = configured_client(settings)
    if client is None:
        raise ConfigError("no FHIR server is configured (IASTM_FHIR_BASE_URL): a dry run "
                          "needs one to read")
    return client


def _stored_dry_run(client: FhirClient, store: Store, mapping: MappingSettings,
                    session_id: str) -> DryRun:
    record = from_dict(SessionRecord, store.get_record(session_id).body)
    bundle = amended_bundle(record, mapping, stored_versions(store))
    return dry_run(client, record, settings=mapping, last_pushed=store.last_pushed(session_id),
                   bundle=bundle)


__all__ = [
    "DryRun",
    "apply_plan",
    "apply_stored_plan",
    "dry_run_many",
    "dry_run_stored",
    "plan_id",
    "readable_patch",
]
