"""The use cases that talk to FHIR servers: the client of a server, push (one by one or the
outbox worker's) and pull. ``fhir_iastm.service`` re-exports them, so the entry points have one
place to call. The dry-run use cases are in ``fhir_iastm.plan_service``, the profile upload in
``fhir_iastm.profile_service``.

* :func:`push_many` — push records one by one (the CLI), reporting each outcome.
* :func:`drain_outbox` — run the outbox worker with the real pusher.
* :func:`pull` — ``sync.pull.pull_records`` with the configured canonical base.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
from fhir_iastm.errors import ConfigError, FhirConflictError, FhirServerError
from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.amend import amended_identifiers
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import Store
from fhir_iastm.sync.circuit import Circuit
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.ports import LastPushedView
from fhir_iastm.sync.pull import PullError, pull_records
from fhir_iastm.sync.push import push_record
from fhir_iastm.sync.sandbox import CleanReport, clean, new_run_tag, tag_system
from fhir_iastm.sync.worker import WorkerStats, run_worker
from fhir_iastm.target_config import TargetSettings, load_target

Pusher = Callable[[SessionRecord, LastPushedView | None], PushOutcome]


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


__all__ = [
    "Pusher",
    "WORKER_RETRY",
    "amended_bundle",
    "configured_client",
    "drain_outbox",
    "generate_signing_key",
    "make_client",
    "make_pusher",
    "pull",
    "push_many",
    "sandbox_clean",
    "sandbox_tag",
    "stored_versions",
    "target_auth",
    "target_settings",
    "worker_client",
]
