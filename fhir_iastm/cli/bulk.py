"""``export-worker`` runs queued Bulk Data exports outside the web service; ``bulk-pull`` pulls
sessions from a server with a Bulk Data export (docs/smart-bulk.md#bulk-pull).

It claims the oldest queued job, writes its NDJSON files to ``IASTM_EXPORT_DIR`` and stores the
manifest; between jobs it deletes the files of expired and cancelled exports. Several workers may
share one PostgreSQL (jobs are claimed ``FOR UPDATE SKIP LOCKED``). docs/smart-bulk.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from fhir_iastm.cli.io import emit_pulled
from fhir_iastm.cli.options import (
    SettingsError,
    auth_options,
    canonical_base_option,
    database_option,
    load_settings,
    require_server,
    server_options,
    target_option,
)


def _exporter(database_url: str | None) -> Any:
    from fhir_iastm.bulk_service import Exporter
    from fhir_iastm.service import mapping_settings
    from fhir_iastm.storage import Store

    settings = load_settings(database_url=database_url)
    store = Store(settings.database_url)
    store.migrate()
    return Exporter(store, settings.export_dir, file_resources=settings.export_file_resources,
                    retention=settings.export_retention, canonical_base=settings.canonical_base,
                    mapping=mapping_settings(settings))


@click.command("export-worker")
@database_option
@click.option("--once", is_flag=True, help="Run every queued export, clean up, then exit.")
@click.option("--poll-interval", default=1.0, show_default=True, type=float)
def export_worker_command(database_url: str | None, once: bool, poll_interval: float) -> None:
    """Run queued $export jobs and delete expired export files."""
    from fhir_iastm.logging import configure_logging

    configure_logging()
    exporter = _exporter(database_url)
    ran = cleaned = 0
    try:
        while True:
            cleaned += exporter.clean()
            if exporter.run_next():
                ran += 1
                continue
            if once:
                break
            time.sleep(poll_interval)
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    finally:
        exporter.store.close()
    click.echo(json.dumps({"exports": ran, "cleaned": cleaned}), err=True)


@click.command("bulk-pull")
@server_options
@auth_options
@canonical_base_option
@target_option
@click.option("--client-id", default=None, help="Same as --smart-client-id.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Same as --smart-key.")
@click.option("--scope", default="system/*.rs", show_default=True,
              help="The SMART scope to ask for.")
@click.option("--group", default=None, help="Export this Group only (Group/<id>/$export).")
@click.option("--since", default=None, help="Only resources changed after this FHIR instant.")
@click.option("--type-filter", "type_filters", multiple=True, metavar="TYPE?QUERY",
              help="A _typeFilter of the export (repeatable), e.g. 'Patient?_id=123'.")
@click.option("--max-wait", default=3600.0, show_default=True, type=float,
              help="Give up when the export is not done after this many seconds.")
def bulk_pull_command(fhir_base_url: str | None, fhir_token: str | None,
                      canonical_base: str | None, target_file: Path | None,
                      client_id: str | None, key_file: Path | None, scope: str,
                      group: str | None, since: str | None, type_filters: tuple[str, ...],
                      max_wait: float) -> None:
    """Pull sessions with a Bulk Data export of the server: one record per line on stdout.
    The server's credentials are those of push (docs/targets.md#authentication)."""
    from dataclasses import replace

    from fhir_iastm.bulk_service import bulk_pull, make_bulk_client
    from fhir_iastm.errors import ConfigError
    from fhir_iastm.service import mapping_settings, target_auth

    aliases = {k: v for k, v in (("fhir_smart_client_id", client_id),
                                 ("fhir_smart_key_file", key_file)) if v is not None}
    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base, target_file=target_file, **aliases)
    base = require_server(settings)
    try:
        auth = target_auth(settings, "bulk")
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    if auth.smart is not None:  # a bulk export asks for the scope given
        auth = replace(auth, smart=replace(auth.smart, scope=scope))
    client = make_bulk_client(base, auth=auth, max_wait=max_wait)
    path = f"Group/{group}/$export" if group else "$export"
    emit_pulled(bulk_pull(client, settings=mapping_settings(settings), path=path, since=since,
                          type_filters=type_filters), settings.canonical_base)


COMMANDS = [export_worker_command, bulk_pull_command]

__all__ = ["COMMANDS", "bulk_pull_command", "export_worker_command"]
