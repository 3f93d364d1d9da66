"""FHIR server commands: ``push``, ``pull`` and ``load-profiles``.

Exit codes: 0 every record pushed or unchanged; 1 an invalid record, a record the server rejected
or one it already holds newer (superseded); 3 the FHIR server failed (unreachable, 5xx, auth) —
3 wins over 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from fhir_iastm.cli.io import (
    EXIT_INVALID,
    EXIT_SERVER,
    InputError,
    emit_outcome,
    emit_pulled,
    emit_result,
    read_documents,
)
from fhir_iastm.cli.options import (
    canonical_base_option,
    load_settings,
    profiles_option,
    require_server,
    server_options,
)
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError, IastmError, operation_outcome

# FHIR server commands (docs/decisions.md#d5 to #d13). Exit codes: 0 every record pushed or
# unchanged;
# 1 an invalid record, a record the server rejected or one it already holds newer (superseded);
# 3 the FHIR server failed (unreachable, 5xx, auth) — 3 wins over 1.


def _valid_since(value: str) -> bool:
    """YYYY-MM-DD or an ISO 8601 / RFC 3339 date-time (the FHIR ``_lastUpdated`` operand)."""
    from datetime import date, datetime

    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            parse(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        return "T" in value or len(value) == 10
    return False


def _client(settings: Settings) -> Any:
    from fhir_iastm.service import make_client

    try:
        return make_client(require_server(settings), settings.fhir_token)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--server") from exc


def _load_push_inputs(files: tuple[IO[str], ...], base: str) -> tuple[list[Any], bool]:
    """Every valid record of FILES (invalid ones reported on stderr, under the canonical ``base``);
    whether any was invalid."""
    from fhir_iastm.records import load_record

    records, invalid = [], False
    for stream in files:
        try:
            items, single = read_documents(stream)
        except InputError as exc:
            emit_outcome([exc.issue], None, base)
            invalid = True
            continue
        for position, item in enumerate(items):
            try:
                records.append(load_record(item))
            except IastmError as exc:
                invalid = True
                emit_outcome(exc.issues, None if single else position, base)
    first = {r.session_id: i for i, r in reversed(list(enumerate(records)))}
    # docs/decisions.md#d9: one session's versions in order
    records.sort(key=lambda r: (first[r.session_id], r.record_version))
    return records, invalid


def _failure_line(record: Any, exc: IastmError, base: str) -> dict[str, Any]:
    return {"session_id": record.session_id, "record_version": record.record_version,
            "status": "error", "operationOutcome": operation_outcome(exc.issues, base=base)}


@click.command("push")
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
@server_options
@canonical_base_option
def push_command(files: tuple[IO[str], ...], fhir_base_url: str | None, fhir_token: str | None,
                 canonical_base: str | None) -> None:
    """Push record(s) from FILES to a FHIR server: one JSON result line per record on stdout."""
    from fhir_iastm.service import mapping_settings, push_many

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base)
    client = _client(settings)
    records, failed = _load_push_inputs(files, settings.canonical_base)
    server_down = False
    results = push_many(client, records, settings=mapping_settings(settings))
    with click.progressbar(results, length=len(records), label="push", file=sys.stderr) as bar:
        for record, outcome in bar:
            if isinstance(outcome, IastmError):
                server_down = True
                emit_result(_failure_line(record, outcome, settings.canonical_base), False)
                continue
            failed = failed or outcome.status not in ("pushed", "unchanged")
            emit_result(outcome.to_json(), False)
    if server_down:
        sys.exit(EXIT_SERVER)
    if failed:
        sys.exit(EXIT_INVALID)


@click.command("pull")
@server_options
@canonical_base_option
@click.option("--patient", "patient_mrn", default=None, help="Only this patient's MRN.")
@click.option("--clinic", "clinic_id", default=None,
              help="Only this clinic's patients (qualifies --patient's MRN system).")
@click.option("--since", default=None,
              help="Only sessions updated at or after DATE[Thh:mm:ss±hh:mm].")
@click.option("--session", "session_id", default=None, help="Only this session_id.")
def pull_command(fhir_base_url: str | None, fhir_token: str | None, canonical_base: str | None,
                 patient_mrn: str | None, clinic_id: str | None, since: str | None,
                 session_id: str | None) -> None:
    """Pull sessions from a FHIR server: one record per line (JSON Lines) on stdout."""
    from fhir_iastm.service import mapping_settings, pull

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base)

    if since is not None and not _valid_since(since):
        raise click.BadParameter("expected YYYY-MM-DD or an RFC 3339 date-time",
                                 param_hint="--since")
    results = pull(_client(settings), session_id=session_id, patient_mrn=patient_mrn,
                   clinic_id=clinic_id, since=since, settings=mapping_settings(settings))
    with click.progressbar(results, label="pull", file=sys.stderr) as bar:
        emit_pulled(bar, settings.canonical_base)


@click.command("load-profiles")
@server_options
@canonical_base_option
@profiles_option
def load_profiles_command(fhir_base_url: str | None, fhir_token: str | None,
                          canonical_base: str | None, profiles_dir: Path | None) -> None:
    """PUT the profiles/ resources a validating server can use, rebased to the canonical base,
    to a FHIR server (so its $validate knows our profiles under the URLs the mapper emits); the
    intensional mCODE body-location ValueSets are left out (profiles/README.md)."""
    from fhir_iastm.errors import FhirServerError
    from fhir_iastm.service import NOT_FOR_SERVERS, upload_profiles

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base, profiles_dir=profiles_dir)
    try:
        written = upload_profiles(_client(settings), settings.profiles_dir,
                                  settings.canonical_base)
    except ConfigError as exc:
        emit_outcome(exc.issues, None, settings.canonical_base)
        sys.exit(EXIT_INVALID)
    except FhirServerError as exc:
        emit_outcome(exc.issues, None, settings.canonical_base)
        sys.exit(EXIT_SERVER)
    emit_result(
        {"uploaded": len(written), "resources": written, "not_uploaded": sorted(NOT_FOR_SERVERS)},
        True,
    )


COMMANDS = (push_command, pull_command, load_profiles_command)

__all__ = ["COMMANDS"]
