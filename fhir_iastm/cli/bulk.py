"""The ``export-worker`` command: runs queued Bulk Data exports outside the web service.

It claims the oldest queued job, writes its NDJSON files to ``IASTM_EXPORT_DIR`` and stores the
manifest; between jobs it deletes the files of expired and cancelled exports. Several workers may
share one PostgreSQL (jobs are claimed ``FOR UPDATE SKIP LOCKED``). docs/smart-bulk.md.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from fhir_iastm.cli.options import database_option, load_settings


def _exporter(database_url: str | None) -> Any:
    from fhir_iastm.bulk_service import Exporter
    from fhir_iastm.storage import Store

    settings = load_settings(database_url=database_url)
    store = Store(settings.database_url)
    store.migrate()
    return Exporter(store, settings.export_dir, file_resources=settings.export_file_resources,
                    retention=settings.export_retention)


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


COMMANDS = [export_worker_command]

__all__ = ["COMMANDS", "export_worker_command"]
