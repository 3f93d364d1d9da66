"""FHIR server commands: ``push``, ``pull``, ``load-profiles`` and ``check-server``.

Exit codes: 0 every record pushed or unchanged; 1 an invalid record, a record the server rejected
or one it already holds newer (superseded); 3 the FHIR server failed (unreachable, 5xx, auth) —
3 wins over 1.
"""

from __future__ import annotations

import json
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
    failure_line,
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
    target_option,
)
from fhir_iastm.cli.review import dry_run_push
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError, IastmError

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


def _unchecked_client(settings: Settings, purpose: str = "push",
                      tag: tuple[str, str] | None = None) -> Any:
    """The target's client with its credentials, not authenticated yet (the readiness check
    reports a refused credential as its ``auth`` check instead of stopping)."""
    from fhir_iastm.service import configured_client

    require_server(settings)
    try:
        client = configured_client(settings, purpose, tag=tag)
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    assert client is not None  # a server is configured
    return client


def authenticated_client(settings: Settings, purpose: str = "push",
                         tag: tuple[str, str] | None = None) -> Any:
    """The target's client with its credentials, authenticated now: a bad key, certificate,
    token URL or a refused scope stops the command with one line before anything is sent."""
    from fhir_iastm.errors import FhirServerError

    client = _unchecked_client(settings, purpose, tag)
    try:
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


def _target(settings: Settings) -> Any:
    """The receiver settings (the target file was checked by ``load_settings``)."""
    from fhir_iastm.service import target_settings

    return target_settings(settings)


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


def _failure_text(exc: IastmError) -> str:
    """The failure's message and the server's first diagnostics (e.g. HAPI's 403 reason)."""
    said = next((i.diagnostics for i in exc.issues if i.diagnostics and i.diagnostics
                 != exc.message), None)
    return f"{exc.message}: {said}" if said else exc.message


@click.command("push")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@server_options
@auth_options
@canonical_base_option
@target_option
@click.option("--dry-run", is_flag=True, default=False,
              help="Read the server and print what the push would do to every resource, "
                   "with a JSON Patch each; write nothing (docs/targets.md#dry-run).")
@click.option("--review", is_flag=True, default=False,
              help="Dry-run each record, show its diff on stderr and ask; a yes writes exactly "
                   "that plan, with If-Match on the versions it showed (docs/targets.md#dry-run).")
@click.option("--sandbox/--no-sandbox", "fhir_sandbox", default=None,
              help="Tag everything this run pushes with a new run tag, told on stderr "
                   "(default: IASTM_FHIR_SANDBOX; docs/targets.md#sandbox-mode).")
@click.option("--sandbox-tag", default=None,
              help="Sandbox mode with this run tag instead of a new one.")
def push_command(files: tuple[IO[bytes], ...], fhir_base_url: str | None,
                 fhir_token: str | None, canonical_base: str | None, target_file: Path | None,
                 dry_run: bool, review: bool, fhir_sandbox: bool | None,
                 sandbox_tag: str | None) -> None:
    """Push record(s) from FILES to a FHIR server: one JSON result line per record on stdout
    (with its "input": file, line, item), a progress line on stderr when it is a terminal, and
    a summary on stderr."""
    from fhir_iastm.service import mapping_settings, push_many

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base, target_file=target_file,
                             fhir_sandbox=fhir_sandbox)
    target = _target(settings)
    client = authenticated_client(settings, "push", announce_sandbox_tag(settings, sandbox_tag))
    files = _rereadable(files)
    run = Run("push", files)
    valid, versions, failed = _plan_push(Run("push (reading)", files), run,
                                         settings.canonical_base)
    for stream in files:
        stream.seek(0)
    if dry_run or review:
        pairs = list(_in_push_order(run, valid, versions))
        dry_run_push(client, run, pairs, settings, failed, review=review and not dry_run)
        return
    server_down = False
    tags: deque[dict[str, Any]] = deque()

    def records() -> Iterator[Any]:
        for record, tag in _in_push_order(run, valid, versions):
            tags.append(tag)
            yield record

    results = push_many(client, records(), settings=mapping_settings(settings),
                        more=lambda sid: bool(versions.get(sid)), target=target)
    for record, outcome in results:
        tag = tags.popleft()
        if isinstance(outcome, IastmError):
            if not server_down:  # the first server failure, once: the rest were not sent
                click.echo(f"Error: {_failure_text(outcome)}; this and the remaining records "
                           "were not sent", err=True)
            server_down = True
            run.count("not sent (server failure)")
            line = failure_line(record, outcome, settings.canonical_base)
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


@click.command("check-server")
@server_options
@auth_options
@canonical_base_option
@profiles_option
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print the report as one JSON document instead of a table.")
@click.option("--probe-writes", is_flag=True, default=False,
              help="Also write a probe Basic resource (identified, deleted afterwards) to try "
                   "conditional create, conditional update and a stale If-Match.")
@click.option("--public-sandbox/--not-public-sandbox", "public_sandbox", default=None,
              help="Whether the server is a shared public sandbox (default: guessed from the "
                   "host).")
@click.option("--write-target", "write_target", default=None,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the receiver settings this report suggests to this TOML file "
                   "(docs/targets.md#receiver-settings); edit it, then push --target FILE.")
def check_server_command(fhir_base_url: str | None, fhir_token: str | None,
                         canonical_base: str | None, profiles_dir: Path | None, as_json: bool,
                         probe_writes: bool, public_sandbox: bool | None,
                         write_target: Path | None) -> None:
    """Check a FHIR server before pushing to it: one line per check (pass / fail / unknown and
    what fhir-iastm does about it; docs/targets.md#readiness-check). Exit 1 when a check
    fails."""
    from fhir_iastm.service import check_server

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base, profiles_dir=profiles_dir)
    checks = check_server(_unchecked_client(settings), profiles=settings.profiles_dir,
                          canonical_base=settings.canonical_base,
                          public_sandbox=public_sandbox, probe_writes=probe_writes)
    if as_json:
        emit_result({"server": settings.fhir_base_url,
                     "checks": [c.to_json() for c in checks]}, True)
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            click.echo(f"{check.status.upper():<8}{check.name:<{width + 2}}{check.detail}")
            click.echo(f"{'':<{width + 10}}-> {check.action}")
    if write_target is not None:
        from fhir_iastm.service import suggested_target_toml

        write_target.write_text(suggested_target_toml(checks), "utf-8")
    if any(c.status == "fail" for c in checks):
        sys.exit(EXIT_INVALID)


COMMANDS = (push_command, pull_command, load_profiles_command, check_server_command)

__all__ = ["COMMANDS", "announce_sandbox_tag", "authenticated_client"]
