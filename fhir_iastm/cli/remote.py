"""FHIR server commands: ``push``, ``pull`` and ``load-profiles``.

Exit codes: 0 every record pushed or unchanged; 1 an invalid record, a record the server rejected
or one it already holds newer (superseded); 3 the FHIR server failed (unreachable, 5xx, auth) —
3 wins over 1.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from fhir_iastm.cli.io import (
    EXIT_INVALID,
    EXIT_SERVER,
    Run,
    emit_outcome,
    emit_pulled,
    emit_result,
    label,
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


def _rereadable(files: tuple[IO[bytes], ...]) -> tuple[IO[bytes], ...]:
    """The inputs, each one that cannot seek (stdin, a pipe) copied to a temporary file first,
    so that push can read them twice without holding them in memory."""
    import shutil
    import tempfile

    out = []
    for stream in files:
        if stream.seekable():
            out.append(stream)
            continue
        # closed at exit; its name is a number, so it is reported as "-", like stdin
        spool = tempfile.TemporaryFile()  # noqa: SIM115
        shutil.copyfileobj(stream, spool)
        spool.seek(0)
        out.append(spool)
    return tuple(out)


def _plan_push(reading: Run, run: Run, base: str
               ) -> tuple[set[int], dict[str, deque[int]], bool]:
    """First pass over the inputs: the positions of the valid records, each session's versions
    in push order (docs/decisions.md#d9: one session's versions in record_version order), and
    whether any record was invalid (counted in ``run``, reported on stderr as read, under the
    canonical ``base``).
    Only these small indexes are kept, never the records."""
    from fhir_iastm.records import load_record

    valid: set[int] = set()
    versions: dict[str, list[int]] = {}
    invalid = False
    for position, item in enumerate(reading.items()):
        if item.issue is not None:
            run.count("invalid")
            emit_outcome([item.issue], label(item.source), base)
            invalid = True
            continue
        try:
            record = load_record(item.value)
        except IastmError as exc:
            run.count("invalid")
            invalid = True
            emit_outcome(exc.issues, label(item.source, item.value), base)
            continue
        valid.add(position)
        versions.setdefault(record.session_id, []).append(record.record_version)
    return valid, {sid: deque(sorted(v)) for sid, v in versions.items()}, invalid


def _in_push_order(run: Run, valid: set[int], versions: dict[str, deque[int]]
                   ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Second pass: the valid records with their input tags, each as soon as it is its session's
    next version; only a version read before its predecessor waits in memory."""
    from fhir_iastm.records import load_record

    held: dict[tuple[str, int], list[tuple[Any, dict[str, Any]]]] = {}
    for position, item in enumerate(run.items()):
        if position not in valid:
            continue
        record = load_record(item.value)
        sid = record.session_id
        held.setdefault((sid, record.record_version), []).append(
            (record, item.source.to_json()))
        waiting = versions[sid]
        while waiting and (sid, waiting[0]) in held:
            bucket = held[(sid, waiting[0])]
            pair = bucket.pop(0)
            if not bucket:
                del held[(sid, waiting.popleft())]
            else:
                waiting.popleft()
            yield pair


def _failure_line(record: Any, exc: IastmError, base: str) -> dict[str, Any]:
    return {"session_id": record.session_id, "record_version": record.record_version,
            "status": "error", "operationOutcome": operation_outcome(exc.issues, base=base)}


@click.command("push")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@server_options
@canonical_base_option
def push_command(files: tuple[IO[bytes], ...], fhir_base_url: str | None,
                 fhir_token: str | None, canonical_base: str | None) -> None:
    """Push record(s) from FILES to a FHIR server: one JSON result line per record on stdout
    (with its "input": file, line, item), a progress line on stderr when it is a terminal, and
    a summary on stderr."""
    from fhir_iastm.service import mapping_settings, push_many

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base)
    client = _client(settings)
    files = _rereadable(files)
    run = Run("push", files)
    valid, versions, failed = _plan_push(Run("push (reading)", files), run,
                                         settings.canonical_base)
    for stream in files:
        stream.seek(0)
    server_down = False
    tags: deque[dict[str, Any]] = deque()

    def records() -> Iterator[Any]:
        for record, tag in _in_push_order(run, valid, versions):
            tags.append(tag)
            yield record

    results = push_many(client, records(), settings=mapping_settings(settings),
                        more=lambda sid: bool(versions.get(sid)))
    for record, outcome in results:
        tag = tags.popleft()
        if isinstance(outcome, IastmError):
            server_down = True
            run.count("not sent (server failure)")
            line = _failure_line(record, outcome, settings.canonical_base)
            emit_result({**line, "input": tag}, False)
            continue
        run.count(outcome.status)
        failed = failed or outcome.status not in ("pushed", "unchanged")
        emit_result({**outcome.to_json(), "input": tag}, False)
    run.summary()
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
    emit_pulled(results, settings.canonical_base)


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
