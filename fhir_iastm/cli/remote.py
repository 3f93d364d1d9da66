"""FHIR server commands: ``push``, ``pull`` and ``load-profiles``.

Exit codes: 0 every record pushed or unchanged; 1 an invalid record, a record the server rejected
or one it already holds newer (superseded); 3 the FHIR server failed (unreachable, 5xx, auth) —
3 wins over 1.
"""

from __future__ import annotations

import json
import sys
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
    SettingsError,
    auth_options,
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


def authenticated_client(settings: Settings, purpose: str = "push",
                         tag: tuple[str, str] | None = None) -> Any:
    """The target's client with its credentials, authenticated now: a bad key, certificate,
    token URL or a refused scope stops the command with one line before anything is sent."""
    from fhir_iastm.errors import FhirServerError
    from fhir_iastm.service import configured_client

    require_server(settings)
    try:
        client = configured_client(settings, purpose, tag=tag)
        assert client is not None  # a server is configured
        client.authenticate()
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    except FhirServerError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(EXIT_SERVER)
    return client


def announce_sandbox_tag(settings: Settings, given: str | None) -> tuple[str, str] | None:
    """The run's sandbox tag (system, code) when sandbox mode is on, told on stderr."""
    from fhir_iastm.service import sandbox_tag

    tag = sandbox_tag(settings, given)
    if tag is not None:
        click.echo(json.dumps({"sandbox_tag": tag[1], "system": tag[0]}), err=True)
    return tag


def _load_push_inputs(
    run: Run, base: str
) -> tuple[list[tuple[Any, dict[str, Any]]], bool]:
    """Every valid record of the run's files with its input tag (invalid ones reported on
    stderr as read, under the canonical ``base``); whether any was invalid. The records are held
    (small objects, not the text): one session's versions must go out in record_version order
    (docs/decisions.md#d9)."""
    from fhir_iastm.records import load_record

    records, invalid = [], False
    for item in run.items():
        if item.issue is not None:
            run.count("invalid")
            emit_outcome([item.issue], label(item.source), base)
            invalid = True
            continue
        try:
            records.append((load_record(item.value), item.source.to_json()))
        except IastmError as exc:
            run.count("invalid")
            invalid = True
            emit_outcome(exc.issues, label(item.source, item.value), base)
    first = {r.session_id: i for i, (r, _) in reversed(list(enumerate(records)))}
    # docs/decisions.md#d9: one session's versions in order
    records.sort(key=lambda pair: (first[pair[0].session_id], pair[0].record_version))
    return records, invalid


def _failure_line(record: Any, exc: IastmError, base: str) -> dict[str, Any]:
    return {"session_id": record.session_id, "record_version": record.record_version,
            "status": "error", "operationOutcome": operation_outcome(exc.issues, base=base)}


@click.command("push")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@server_options
@auth_options
@canonical_base_option
@click.option("--sandbox/--no-sandbox", "fhir_sandbox", default=None,
              help="Tag everything this run pushes with a new run tag, told on stderr "
                   "(default: IASTM_FHIR_SANDBOX; docs/targets.md#sandbox-mode).")
@click.option("--sandbox-tag", default=None,
              help="Sandbox mode with this run tag instead of a new one.")
def push_command(files: tuple[IO[bytes], ...], fhir_base_url: str | None,
                 fhir_token: str | None, canonical_base: str | None, fhir_sandbox: bool | None,
                 sandbox_tag: str | None) -> None:
    """Push record(s) from FILES to a FHIR server: one JSON result line per record on stdout
    (with its "input": file, line, item), a progress line on stderr when it is a terminal, and
    a summary on stderr."""
    from fhir_iastm.service import mapping_settings, push_many

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base, fhir_sandbox=fhir_sandbox)
    client = authenticated_client(settings, "push", announce_sandbox_tag(settings, sandbox_tag))
    run = Run("push", files)
    pairs, failed = _load_push_inputs(run, settings.canonical_base)
    server_down = False
    tags = [tag for _, tag in pairs]
    results = push_many(client, [record for record, _ in pairs],
                        settings=mapping_settings(settings))
    for (record, outcome), tag in zip(results, tags, strict=True):
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
@auth_options
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
    results = pull(authenticated_client(settings, "pull"), session_id=session_id,
                   patient_mrn=patient_mrn,
                   clinic_id=clinic_id, since=since, settings=mapping_settings(settings))
    emit_pulled(results, settings.canonical_base)


@click.command("load-profiles")
@server_options
@auth_options
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
        written = upload_profiles(authenticated_client(settings, "profiles"),
                                  settings.profiles_dir,
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

__all__ = ["COMMANDS", "announce_sandbox_tag", "authenticated_client"]
