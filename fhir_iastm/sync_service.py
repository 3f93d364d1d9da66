"""The use cases that talk to FHIR servers: the client of a server, push (one by one or the
outbox worker's), pull and profile upload. ``fhir_iastm.service`` re-exports them, so the entry
points have one place to call.

* :func:`push_many` — push records one by one (the CLI), reporting each outcome.
* :func:`drain_outbox` — run the outbox worker with the real pusher.
* :func:`pull` — ``sync.pull.pull_records`` with the configured canonical base.
* :func:`upload_profiles` — PUT every conformance resource of profiles/ to a FHIR server, so its
  ``$validate`` checks our profiles (docs/decisions.md#d1; docs/validation.md#oracle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fhir_iastm.backoff import Backoff
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.client.auth import (  # noqa: F401  (generate_signing_key: re-exported)
    SmartConfig,
    TargetAuth,
    generate_signing_key,
    load_signing_key,
)
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError, FhirConflictError, FhirServerError, PlanChangedError
from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.amend import amended_identifiers
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import (
    Store,
)
from fhir_iastm.sync.circuit import Circuit
from fhir_iastm.sync.diff import readable as readable_patch
from fhir_iastm.sync.dryrun import DryRun, dry_run, plan_id
from fhir_iastm.sync.dryrun import apply_dry_run as apply_plan
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.ports import LastPushedView
from fhir_iastm.sync.pull import PullError, pull_records
from fhir_iastm.sync.push import push_record
from fhir_iastm.sync.sandbox import CleanReport, clean, new_run_tag, tag_system
from fhir_iastm.sync.worker import WorkerStats, run_worker
from fhir_iastm.target_config import TargetSettings, load_target

Pusher = Callable[[SessionRecord, LastPushedView | None], PushOutcome]
#: Upload order: what a StructureDefinition or ValueSet refers to goes first.
_UPLOAD_ORDER = {"CodeSystem": 0, "ValueSet": 1, "StructureDefinition": 2, "ConceptMap": 3}


def make_client(
    base_url: str, token: str | None = None, *, retry: RetryPolicy | None = None,
    auth: TargetAuth | None = None, tag: tuple[str, str] | None = None,
) -> FhirClient:
    """A FhirClient for one server (bearer ``token`` or the credentials ``auth``; ``tag``:
    the sandbox run tag (system, code) put on every resource it writes)."""
    return FhirClient(base_url, token=token, retry=retry, auth=auth, tag=tag)


def target_auth(settings: Settings, purpose: str = "push") -> TargetAuth:
    """The target's credentials from the ``fhir_*`` settings (``purpose``: ``push`` or
    ``pull``, which SMART scopes to ask for). ConfigError names the setting that is wrong."""
    smart = None
    if (settings.fhir_smart_client_id is None) != (settings.fhir_smart_key_file is None):
        raise ConfigError("IASTM_FHIR_SMART_CLIENT_ID and IASTM_FHIR_SMART_KEY_FILE go together")
    if settings.fhir_smart_client_id and settings.fhir_smart_key_file:
        smart = SmartConfig(settings.fhir_smart_client_id,
                            load_signing_key(settings.fhir_smart_key_file,
                                             kid=settings.fhir_smart_kid),
                            purpose=purpose, v1=settings.fhir_smart_scopes_v1,
                            token_url=settings.fhir_smart_token_url)
    return TargetAuth(token=settings.fhir_token, basic=settings.fhir_basic_auth,
                      headers=dict(settings.fhir_headers), client_cert=settings.fhir_client_cert,
                      client_key=settings.fhir_client_key, ca_bundle=settings.fhir_ca_bundle,
                      smart=smart)


def configured_client(settings: Settings, purpose: str = "push", *,
                      retry: RetryPolicy | None = None,
                      tag: tuple[str, str] | None = None) -> FhirClient | None:
    """The client of ``fhir_base_url`` with the target's credentials, or None when no server
    is configured."""
    if settings.fhir_base_url is None:
        return None
    return make_client(settings.fhir_base_url, retry=retry,
                       auth=target_auth(settings, purpose), tag=tag)


def sandbox_tag(settings: Settings, given: str | None = None) -> tuple[str, str] | None:
    """The run's sandbox tag (system, code) when sandbox mode is on (``fhir_sandbox``) or a
    tag is ``given``; None otherwise (docs/targets.md#sandbox-mode)."""
    if given is None and not settings.fhir_sandbox:
        return None
    return tag_system(settings.canonical_base), given or new_run_tag()


def sandbox_clean(client: FhirClient, canonical_base: str, tag: str) -> CleanReport:
    """Delete the resources of one sandbox run (``sync.sandbox.clean``)."""
    return clean(client, tag_system(canonical_base), tag)


#: The outbox worker's client retries once, briefly: the worker's per-entry backoff and its
#: circuit breaker (``sync.circuit``) wait out a dead server, not each request.
WORKER_RETRY = RetryPolicy(max_attempts=2, base_delay=0.25, max_delay=1.0)


def worker_client(base_url: str, token: str | None = None, *,
                  auth: TargetAuth | None = None,
                  tag: tuple[str, str] | None = None) -> FhirClient:
    """The client of an outbox worker (``WORKER_RETRY``)."""
    return make_client(base_url, token, retry=WORKER_RETRY, auth=auth, tag=tag)


Earlier = Callable[[SessionRecord], Iterable[SessionRecord]]


def target_settings(settings: Settings) -> TargetSettings:
    """The receiver settings of the configured target: its file (``target_file``), else the
    preferred path with the two global receiver options (docs/targets.md#receiver-settings)."""
    if settings.target_file is not None:
        return load_target(settings.target_file)
    return TargetSettings(performed_as_datetime=settings.performed_as_datetime,
                          strip_profiles=settings.strip_profiles)


def make_pusher(
    client: FhirClient,
    settings: MappingSettings | None = None,
    *,
    earlier: Earlier | None = None,
    target: TargetSettings | None = None,
) -> Pusher:
    """``push(record, last_pushed) -> PushOutcome`` bound to one client (the worker's ``push``).

    ``earlier(record)``: the session's earlier record versions; an Observation whose value one
    of them had otherwise is sent as ``amended`` (mapping/amend.py). ``target``: the receiver's
    Bundle size limit and conditional requests (docs/targets.md#receiver-settings)."""
    settings = settings or MappingSettings()
    target = target or TargetSettings()

    def push(record: SessionRecord, last_pushed: LastPushedView | None) -> PushOutcome:
        bundle = amended_bundle(record, settings, earlier)
        return push_record(
            client, record, settings=settings, last_pushed=last_pushed, bundle=bundle,
            max_entries=target.max_bundle_entries, search_first=not target.conditional_requests,
        )

    return push


def amended_bundle(
    record: SessionRecord, settings: MappingSettings, earlier: Earlier | None
) -> dict[str, Any] | None:
    """The record's Bundle when an earlier version had another value for one of its
    Observations (sent ``amended``); None: the plain mapping (the push maps it itself)."""
    if earlier is None or record.record_version <= 1:
        return None
    amended = amended_identifiers(record, earlier(record), settings)
    return to_fhir(record, settings, amended=amended) if amended else None


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


def stored_versions(store: Store) -> Earlier:
    """``earlier`` for :func:`make_pusher`: the versions the store holds below the record's."""

    def earlier(record: SessionRecord) -> Iterator[SessionRecord]:
        for version in store.list_versions(record.session_id):
            if version < record.record_version:
                body = store.get_record(record.session_id, version).body
                yield from_dict(SessionRecord, body)

    return earlier


def push_many(
    client: FhirClient,
    records: Iterable[SessionRecord],
    *,
    settings: MappingSettings | None = None,
    more: Callable[[str], bool] | None = None,
    target: TargetSettings | None = None,
) -> Iterator[tuple[SessionRecord, PushOutcome | FhirServerError]]:
    """Push records in order, each with its outcome (the CLI's ``push``).

    A session's earlier success in the same run is the history of its next version (local diff,
    docs/decisions.md#d8); otherwise retractions come from the server search. After a server failure
    (unreachable, 5xx, auth) the remaining records are not attempted: they come back with it; a
    409 that outlasted the re-reads concerns that session only. ``more(session_id)``: whether
    a later version of the session follows in ``records`` (None: keep every session's history);
    a session with none is forgotten once pushed, so memory does not grow with the input.
    """
    seen: dict[str, list[SessionRecord]] = {}
    push = make_pusher(client, settings, earlier=lambda r: seen.get(r.session_id, []),
                       target=target)
    history: dict[str, PushOutcome] = {}
    failure: FhirServerError | None = None
    for record in records:
        if failure is None:
            try:
                outcome = push(record, history.get(record.session_id))
                seen.setdefault(record.session_id, []).append(record)
            except FhirConflictError as exc:  # contention on this session only: go on
                yield record, exc
                continue
            except FhirServerError as exc:
                failure = exc
            else:
                if outcome.status in ("pushed", "unchanged"):
                    history[record.session_id] = outcome
                if more is not None and not more(record.session_id):
                    seen.pop(record.session_id, None)
                    history.pop(record.session_id, None)
                yield record, outcome
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


def drain_outbox(
    store: Store,
    client: FhirClient,
    *,
    settings: MappingSettings | None = None,
    policy: Settings | None = None,
    worker_id: str | None = None,
    once: bool = True,
    poll_interval: float = 1.0,
    lease_seconds: float | None = None,
    allow_canonical_base_change: bool = False,
) -> WorkerStats:
    """Run one outbox worker with the real pusher: until nothing is due (``once``), else until
    SIGTERM/SIGINT. ``lease_seconds`` None keeps the worker's default. It refuses to push under
    another canonical base than the store's sessions were pushed under, unless allowed.

    ``policy``: the worker's attempts, per-entry backoff and circuit breaker (``worker_*`` and
    ``circuit_*`` settings; None: their defaults). While the target is down the worker claims
    nothing and probes it (``sync.circuit``); with ``once`` it returns at once."""
    settings = settings or MappingSettings()
    policy = policy or Settings()
    lease: dict[str, Any] = {} if lease_seconds is None else {"lease_seconds": lease_seconds}
    return run_worker(
        store,
        make_pusher(client, settings, earlier=stored_versions(store),
                    target=target_settings(policy)),
        worker_id=worker_id,
        once=once,
        poll_interval=poll_interval,
        canonical_base=settings.base,
        allow_canonical_base_change=allow_canonical_base_change,
        max_attempts=policy.worker_max_attempts,
        backoff=Backoff(base=policy.worker_backoff_base_s, cap=policy.worker_backoff_cap_s),
        circuit=Circuit(threshold=policy.circuit_threshold,
                        probe=Backoff(base=1.0, cap=policy.circuit_probe_cap_s)),
        **lease,
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


#: Resources of profiles/ a validating server cannot use (profiles/README.md, "Loading into
#: HAPI"): the intensional SNOMED CT ValueSets of the mCODE body-location qualifier. A server
#: without SNOMED CT content cannot expand their ``descendent-of`` filters and reports an *error*
#: for every qualifier; without them it reports the *warning* "ValueSet not found", which is what
#: the project's validation rules ask for (the qualifier is checked by our own invariants).
#: And the sandbox run tags' CodeSystem (``content: not-present``): no profile binds to it, and
#: HAPI 8.8 refuses to store it again under another canonical base (HTTP 409, a unique-index
#: violation in its terminology tables), which broke a second ``load-profiles``.
NOT_FOR_SERVERS = frozenset(
    {
        "ValueSet/mcode-body-location-qualifier-vs",
        "ValueSet/mcode-body-location-and-laterality-qualifier-vs",
        "CodeSystem/iastm-sandbox-run",
    }
)


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id')}"


def conformance_resources(
    source: ProfileIndex | str | Path,
    canonical_base: str | None = None,
    *,
    for_server: bool = False,
) -> list[dict[str, Any]]:
    """The conformance resources of a ProfileIndex (already rebased) or of a profiles/ folder
    rebased to ``canonical_base``, in upload order; ``for_server`` leaves out
    :data:`NOT_FOR_SERVERS`."""
    index = source if isinstance(source, ProfileIndex) else load_profiles(source, canonical_base)
    resources = [
        {k: v for k, v in doc.items() if not k.startswith("_")}
        for doc in index.resources
        if doc.get("resourceType") in _UPLOAD_ORDER
    ]
    if for_server:
        resources = [r for r in resources if _key(r) not in NOT_FOR_SERVERS]
    return sorted(resources, key=lambda r: (_UPLOAD_ORDER[r["resourceType"]], str(r.get("id"))))


def upload_profiles(
    client: FhirClient, source: ProfileIndex | str | Path, canonical_base: str | None = None
) -> list[str]:
    """PUT every profiles/ resource a validating server can use (``Type/id``) to the server;
    returns what was written."""
    written = []
    for resource in conformance_resources(source, canonical_base, for_server=True):
        client.post_conformance(resource)
        written.append(_key(resource))
    return written


__all__ = [
    "Pusher",
    "NOT_FOR_SERVERS",
    "configured_client",
    "conformance_resources",
    "DryRun",
    "amended_bundle",
    "apply_plan",
    "apply_stored_plan",
    "drain_outbox",
    "plan_id",
    "dry_run_many",
    "dry_run_stored",
    "readable_patch",
    "make_client",
    "make_pusher",
    "stored_versions",
    "target_settings",
    "generate_signing_key",
    "sandbox_clean",
    "sandbox_tag",
    "target_auth",
    "pull",
    "push_many",
    "upload_profiles",
    "worker_client",
]
