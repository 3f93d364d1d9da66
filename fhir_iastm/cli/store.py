"""Edge: the service-side commands of ``fhir-iastm`` — ``init-db``, ``reindex``, ``import``,
``serve``, ``worker`` and ``export`` (registered on the group in ``cli/__init__.py``).

Layer: edge. Settings come from the same ``IASTM_*`` environment as the HTTP service
(``config.from_environ``); options override them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import replace
from typing import IO, Any

import click

from fhir_iastm.cli.io import EXIT_INVALID
from fhir_iastm.config import from_environ

_db_option = click.option(
    "--database-url", envvar=["IASTM_DATABASE_URL", "DATABASE_URL"], default=None,
    help="SQLAlchemy URL of the store (env DATABASE_URL; default sqlite:///fhir_iastm.db).")


def _store(database_url: str | None) -> Any:
    from fhir_iastm.storage import Store

    store = Store(database_url or from_environ()["DATABASE_URL"])
    store.migrate()
    return store


def _index(database_url: str | None, *, everything: bool) -> int:
    from fhir_iastm.service import index_store, mapping_settings

    store = _store(database_url)
    total = store.count_unindexed() if not everything else None
    with click.progressbar(length=total or 0, label="indexing FHIR resources", file=sys.stderr,
                           show_pos=True) as bar:
        last = 0

        def progress(done: int) -> None:
            nonlocal last
            bar.update(done - last)
            last = done

        count = index_store(store, mapping_settings(from_environ()), everything=everything,
                            progress=progress)
    store.close()
    return count


@click.command("init-db")
@_db_option
def init_db_command(database_url: str | None) -> None:
    """Create or upgrade the store's schema (Alembic), then index the FHIR resources of every
    record stored before the facade's tables existed."""
    count = _index(database_url, everything=False)
    click.echo(f"store schema is up to date; {count} record(s) indexed", err=True)


@click.command("reindex")
@_db_option
def reindex_command(database_url: str | None) -> None:
    """Rebuild the FHIR resources and search index of every record (after a mapping change);
    resources whose content changed get a new version."""
    count = _index(database_url, everything=True)
    click.echo(f"{count} record(s) reindexed", err=True)


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
@_db_option
def import_command(files: tuple[IO[str], ...], database_url: str | None) -> None:
    """Store record(s) from FILES exactly as ``POST /api/sessions`` would, queueing their push.

    One JSON line per record on stdout (created / new-version / unchanged, or the error's
    OperationOutcome); exit 1 if any record was rejected.
    """
    from fhir_iastm.cli.io import read_documents
    from fhir_iastm.errors import IastmError, operation_outcome
    from fhir_iastm.records import check_record
    from fhir_iastm.service import mapping_settings, save_record

    store = _store(database_url)
    mapping = mapping_settings(from_environ())
    failed = False
    for stream in files:
        items, _single = read_documents(stream)
        for item in items:
            record, issues = check_record(item)
            line: dict[str, Any] = {"session_id": (item or {}).get("session_id")
                                    if isinstance(item, dict) else None}
            try:
                if record is None:
                    raise IastmError("invalid record", [i for i in issues if i.is_error])
                result = save_record(store, record, item, mapping, actor="cli")
                line.update(status=result.status, record_version=result.record_version)
            except IastmError as exc:
                failed = True
                line.update(status="rejected", operationOutcome=operation_outcome(exc.issues))
            click.echo(json.dumps(line))
    store.close()
    if failed:
        sys.exit(EXIT_INVALID)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
def serve_command(host: str, port: int, debug: bool) -> None:
    """Run the HTTP service on Flask's development server (production: gunicorn wsgi:app)."""
    from fhir_iastm.api import create_app

    create_app().run(host=host, port=port, debug=debug, use_reloader=False)


@click.command("worker")
@_db_option
@click.option("--server", envvar="IASTM_FHIR_BASE_URL", required=True,
              help="FHIR R4 base URL to push to (env IASTM_FHIR_BASE_URL).")
@click.option("--token", envvar="IASTM_FHIR_TOKEN", default=None,
              help="Bearer token for that server (env IASTM_FHIR_TOKEN).")
@click.option("--once", is_flag=True, help="Drain what is due, then exit.")
@click.option("--poll-interval", default=1.0, show_default=True, type=float)
@click.option("--worker-id", default=None, help="Name in claims and logs (default host:pid).")
@click.option("--lease-seconds", default=None, type=click.FloatRange(min=1.0),
              help="How long a claim holds before another worker may take the entry over "
                   "(a crashed worker's sessions wait this long; default: the worker's).")
def worker_command(database_url: str | None, server: str, token: str | None, once: bool,
                   poll_interval: float, worker_id: str | None,
                   lease_seconds: float | None) -> None:
    """Drain the push outbox to the FHIR server (several workers may share one PostgreSQL)."""
    from fhir_iastm.logging import configure_logging
    from fhir_iastm.service import make_client, make_pusher, mapping_settings
    from fhir_iastm.sync.worker import run_worker

    configure_logging()
    store = _store(database_url)
    client = make_client(server, token)
    lease: dict[str, Any] = {} if lease_seconds is None else {"lease_seconds": lease_seconds}
    stats = run_worker(store, make_pusher(client, mapping_settings(from_environ())),
                       worker_id=worker_id, once=once, poll_interval=poll_interval, **lease)
    store.close()
    click.echo(json.dumps(dataclasses.asdict(stats)), err=True)


@click.command("export")
@_db_option
def export_command(database_url: str | None) -> None:
    """Every stored session's FHIR resources as NDJSON on stdout (streamed, constant memory)."""
    from fhir_iastm.facade import stored_resources
    from fhir_iastm.mapping import to_fhir
    from fhir_iastm.records.model import SessionRecord, from_dict
    from fhir_iastm.service import mapping_settings

    store = _store(database_url)
    settings = mapping_settings(from_environ())
    out = sys.stdout
    for stored in store.iter_records():
        # stored bodies were validated when they were saved: rebuild, don't re-validate
        record = from_dict(SessionRecord, stored.body)
        bundle = to_fhir(record, replace(settings, record_hash=stored.record_hash))
        for resource in stored_resources(bundle):
            out.write(json.dumps(resource, separators=(",", ":")))
            out.write("\n")
    store.close()


COMMANDS = (init_db_command, reindex_command, import_command, serve_command, worker_command,
            export_command)

__all__ = ["COMMANDS"]
