"""The service-side commands of ``fhir-iastm`` — ``init-db``, ``reindex``, ``import``,
``serve``, ``worker``, ``export`` and ``config`` (registered on the group in ``cli/__init__.py``).

Settings come from the same ``IASTM_*`` environment as the HTTP service (``config.Settings``);
options override them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

import click

from fhir_iastm.cli.io import (
    EXIT_INVALID,
    EXIT_SERVER,
    EXIT_STORE,
    Run,
    emit_result,
    label,
    store_errors,
)
from fhir_iastm.cli.options import (
    SettingsError,
    auth_options,
    canonical_base_option,
    database_option,
    load_settings,
    require_server,
    server_options,
)
from fhir_iastm.config import Settings, variables


def _store(settings: Settings, *, existing: bool = False) -> Any:
    """The migrated store; with ``existing``, a SQLite file that is not there is an error (exit 4)
    instead of a new empty database (a mistyped path must not look like an empty store)."""
    from fhir_iastm.service import MissingDatabaseError, open_store

    try:
        return open_store(settings.database_url, existing=existing)
    except MissingDatabaseError as exc:
        click.echo(f"fhir-iastm: {exc}", err=True)
        sys.exit(EXIT_STORE)


def _index(database_url: str | None, *, everything: bool) -> int:
    from fhir_iastm.service import index_store, mapping_settings

    settings = load_settings(database_url=database_url)
    store = _store(settings)
    total = store.count_unindexed() if not everything else None
    with click.progressbar(length=total or 0, label="indexing FHIR resources", file=sys.stderr,
                           show_pos=True) as bar:
        last = 0

        def progress(done: int) -> None:
            nonlocal last
            bar.update(done - last)
            last = done

        count = index_store(store, mapping_settings(settings), everything=everything,
                            progress=progress)
    store.close()
    return count


@click.command("init-db")
@database_option
@store_errors
def init_db_command(database_url: str | None) -> None:
    """Create or upgrade the store's schema (Alembic), then index the FHIR resources of every
    record stored before the facade's tables existed."""
    count = _index(database_url, everything=False)
    click.echo(f"store schema is up to date; {count} record(s) indexed", err=True)


@click.command("reindex")
@database_option
def reindex_command(database_url: str | None) -> None:
    """Rebuild the FHIR resources and search index of every record (after a mapping change);
    resources whose content changed get a new version."""
    count = _index(database_url, everything=True)
    click.echo(f"{count} record(s) reindexed", err=True)


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@database_option
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes that validate, map and store batches in file order "
                   "(default: the CPU count).")
@click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True,
              help="Records per database transaction (each record is still all-or-nothing).")
@store_errors
def import_command(files: tuple[IO[bytes], ...], database_url: str | None, jobs: int | None,
                   batch: int) -> None:
    """Store record(s) from FILES exactly as ``POST /api/sessions`` would, queueing their push.

    One JSON line per record on stdout as it is stored (created / new-version / unchanged, or
    the error's OperationOutcome; with its "input": file, line, item), then a summary with the
    rate on stderr; exit 1 if any record was rejected, 4 if the database failed. Records are read
    as they are needed, a bounded number ahead of the one being stored.
    """
    from fhir_iastm.service import mapping_settings

    settings = load_settings(database_url=database_url)
    store = _store(settings)
    mapping = mapping_settings(settings)
    run = Run("import", files)
    for line in _import_lines(store, run.items(), mapping, settings.canonical_base,
                              jobs or os.cpu_count() or 1, batch):
        run.count(line["status"])
        emit_result(line, False)
    store.close()
    run.summary(rate=True)
    if run.counts["rejected"]:
        sys.exit(EXIT_INVALID)


def _import_lines(store: Any, items: Iterator[Any], mapping: Any, base: str, jobs: int,
                  batch: int) -> Iterator[dict[str, Any]]:
    """The result line of each input item, in input order (unreadable ones rejected without
    reaching the store); the readable ones go through one ``import_records`` run."""
    from fhir_iastm.service import import_records

    read: deque[Any] = deque()  # items read and not yet answered, in order

    def readable() -> Iterator[Any]:
        for item in items:
            read.append(item)
            if item.issue is None:
                yield item.value

    for _body, result in import_records(store, readable(), mapping, actor="cli", jobs=jobs,
                                        batch=batch):
        while read[0].issue is not None:
            yield _import_line(read.popleft(), None, base)
        yield _import_line(read.popleft(), result, base)
    while read:
        yield _import_line(read.popleft(), None, base)


def _import_line(item: Any, result: Any, base: str) -> dict[str, Any]:
    """One input item's result line: its save result, or why it was rejected."""
    from fhir_iastm.errors import operation_outcome
    from fhir_iastm.storage import SaveResult

    line: dict[str, Any] = {"session_id": item.value.get("session_id")
                            if isinstance(item.value, dict) else None,
                            "input": item.source.to_json()}
    if isinstance(result, SaveResult):
        line.update(status=result.status, record_version=result.record_version)
        return line
    issues = [item.issue] if item.issue is not None else list(result.issues)
    where = label(item.source, item.value)
    tagged = [dataclasses.replace(i, diagnostics=f"{where}: {i.diagnostics or ''}")
              for i in issues]
    line.update(status="rejected", operationOutcome=operation_outcome(tagged, base=base))
    return line


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
def serve_command(host: str, port: int, debug: bool) -> None:
    """Run the HTTP service on Flask's development server (production: gunicorn wsgi:app)."""
    from fhir_iastm.api import create_app

    create_app(load_settings()).run(host=host, port=port, debug=debug, use_reloader=False)


@click.command("worker")
@database_option
@server_options
@auth_options
@click.option("--once", is_flag=True, help="Drain what is due, then exit.")
@click.option("--poll-interval", default=1.0, show_default=True, type=float)
@click.option("--worker-id", default=None, help="Name in claims and logs (default host:pid).")
@click.option("--lease-seconds", default=None, type=click.FloatRange(min=1.0),
              help="How long a claim holds before another worker may take the entry over "
                   "(a crashed worker's sessions wait this long; default: the worker's).")
@canonical_base_option
@click.option("--allow-canonical-base-change", is_flag=True, default=False,
              help="Push under the canonical base although the store's sessions were pushed "
                   "under another one: a deliberate migration, docs/canonical-base.md (default: "
                   "IASTM_ALLOW_CANONICAL_BASE_CHANGE).")
@click.option("--max-attempts", default=None, type=click.IntRange(min=1),
              help="Attempts per entry before the dead letter (default: IASTM_WORKER_MAX_ATTEMPTS, "
                   "8).")
@click.option("--backoff-base", default=None, type=click.FloatRange(min=0.0, min_open=True),
              help="Seconds before an entry's first retry, doubling after each (default: "
                   "IASTM_WORKER_BACKOFF_BASE_S, 2).")
@click.option("--backoff-cap", default=None, type=click.FloatRange(min=0.0, min_open=True),
              help="Longest wait between an entry's retries (default: "
                   "IASTM_WORKER_BACKOFF_CAP_S, 600).")
@store_errors
def worker_command(database_url: str | None, fhir_base_url: str | None, fhir_token: str | None,
                   once: bool, poll_interval: float, worker_id: str | None,
                   lease_seconds: float | None, canonical_base: str | None,
                   allow_canonical_base_change: bool, max_attempts: int | None,
                   backoff_base: float | None, backoff_cap: float | None) -> None:
    """Drain the push outbox to the FHIR server (several workers may share one PostgreSQL).

    Exit 1 when the canonical base differs from the one the store's sessions were pushed under.
    While the server is down the worker claims nothing and probes it at growing delays; with
    --once it then stops at once and exits 3. A 401/403 pauses pushing (exit 3 with --once).
    """
    from fhir_iastm.cli.remote import announce_sandbox_tag
    from fhir_iastm.errors import ConfigError
    from fhir_iastm.logging import configure_logging
    from fhir_iastm.service import WORKER_RETRY, configured_client, drain_outbox, mapping_settings

    settings = load_settings(database_url=database_url, fhir_base_url=fhir_base_url,
                             fhir_token=fhir_token, canonical_base=canonical_base,
                             allow_canonical_base_change=allow_canonical_base_change or None)
    require_server(settings)
    configure_logging()
    tag = announce_sandbox_tag(settings, None)
    try:  # credentials are checked here; the token itself is fetched on the first push
        client = configured_client(settings, retry=WORKER_RETRY, tag=tag)
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    settings = settings.override(worker_max_attempts=max_attempts,
                                 worker_backoff_base_s=backoff_base,
                                 worker_backoff_cap_s=backoff_cap)
    store = _store(settings)
    try:
        stats = drain_outbox(store, client, settings=mapping_settings(settings), policy=settings,
                             worker_id=worker_id, once=once, poll_interval=poll_interval,
                             lease_seconds=lease_seconds,
                             allow_canonical_base_change=settings.allow_canonical_base_change)
    except ConfigError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(EXIT_INVALID)
    finally:
        store.close()
    click.echo(json.dumps(dataclasses.asdict(stats)), err=True)
    if once and stats.circuit != "closed":
        reason = ("refused the credentials (401/403)" if stats.circuit == "paused"
                  else "is unreachable or failing (connection, timeout, 429/5xx)")
        click.echo(f"fhir-iastm worker: the FHIR server {reason}; queued entries keep their "
                   "attempts and wait", err=True)
        sys.exit(EXIT_SERVER)


#: Resource types that several sessions share (one per clinic, therapist, patient): export
#: remembers a digest of each one written (memory grows with patients, not sessions).
SHARED_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Patient",
                          "Device", "Location"})


@click.command("export")
@database_option
@store_errors
def export_command(database_url: str | None) -> None:
    """Every stored session's FHIR resources as NDJSON on stdout (streamed, constant memory).

    A resource shared by sessions (the clinic's Organization, a therapist, a patient) is
    written once while it is the same; a changed version is written again. The database must
    exist (a mistyped SQLite path is exit 4, not an empty export).
    """
    from fhir_iastm.service import export_sessions, mapping_settings

    config = load_settings(database_url=database_url)
    store, settings = _store(config, existing=True), mapping_settings(config)
    out = sys.stdout
    seen: set[bytes] = set()
    sessions = resources = 0
    tty = sys.stderr.isatty()
    for session in export_sessions(store, settings):
        sessions += 1
        for resource in session:
            text = json.dumps(resource, separators=(",", ":"))
            if resource.get("resourceType") in SHARED_TYPES:
                key = hashlib.sha256(text.encode()).digest()
                if key in seen:
                    continue
                seen.add(key)
            resources += 1
            out.write(text)
            out.write("\n")
        if tty and sessions % 100 == 0:
            sys.stderr.write(f"\rexport: {sessions} sessions\x1b[K")
    store.close()
    if tty:
        sys.stderr.write("\r\x1b[K")
    click.echo(f"export: {sessions} sessions, {resources} resources", err=True)


@click.command("config")
@click.option("--get", "name", type=click.Choice(sorted(variables())), default=None,
              help="Print this one setting's value only (empty when unset).")
def config_command(name: str | None) -> None:
    """Check the IASTM_* settings and print them as JSON (secrets only as "(set)").

    Exit 2 with one line naming the variable when a value is not accepted.
    """
    shown = load_settings().public()
    if name is None:
        click.echo(json.dumps(shown, indent=2))
    else:
        value = shown[name]
        click.echo("" if value is None else value if isinstance(value, str) else json.dumps(value))


COMMANDS = (init_db_command, reindex_command, import_command, serve_command, worker_command,
            export_command, config_command)

__all__ = ["COMMANDS"]
