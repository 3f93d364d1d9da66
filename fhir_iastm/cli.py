"""Edge: the ``fhir-iastm`` command line (click group ``main``; also ``python -m fhir_iastm``).

Layer: edge. Reads files/stdin and the ``IASTM_*`` environment (only here), calls the core, prints
JSON to stdout and OperationOutcomes to stderr. Nothing imports this module.

Exit codes (STYLE §9): 0 OK, 1 invalid record / mapping / profile, 2 usage error, 3 FHIR server.

Input of ``map`` and ``unmap``: one JSON document, a JSON array, or JSON Lines. Output: a single
input object gives one pretty-printed JSON document; an array or JSON Lines gives **JSON Lines**
(one compact document per input item, in input order; invalid items are skipped on stdout and
reported on stderr, one OperationOutcome line per item).

Each command is one block below; add new commands as new blocks.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from collections.abc import Callable
from typing import IO, Any

import click

from fhir_iastm import __version__
from fhir_iastm.errors import IastmError, Issue, operation_outcome
from fhir_iastm.mapping.settings import DEFAULT_CANONICAL_BASE

EXIT_INVALID = 1


class InputError(Exception):
    """The input is not JSON / JSON Lines of the expected shape; carries the issue to report."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.diagnostics)
        self.issue = issue


# ---------------------------------------------------------------- shared helpers


def read_documents(stream: IO[str]) -> tuple[list[Any], bool]:
    """(items, single): one JSON value, the items of a JSON array, or JSON Lines."""
    text = stream.read()
    if not text.strip():
        raise InputError(Issue("error", "structure", None, "the input is empty", "E_FORMAT"))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return _json_lines(text, exc), False
    if isinstance(value, list):
        return value, False
    return [value], True


def _json_lines(text: str, first_error: json.JSONDecodeError) -> list[Any]:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) < 2:
        raise InputError(Issue("error", "structure", None,
                               f"malformed JSON: {first_error.msg} at line {first_error.lineno} "
                               f"column {first_error.colno}", "E_FORMAT"))
    items = []
    for number, line in lines:
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            message = f"malformed JSON Lines: line {number}: {exc.msg} at column {exc.colno}"
            raise InputError(Issue("error", "structure", None, message, "E_FORMAT")) from exc
    return items


def emit_outcome(issues: list[Issue], position: int | None) -> None:
    """One OperationOutcome line on stderr; ``position`` names the item of a multi-item input."""
    if position is not None:
        issues = [dataclasses.replace(i, diagnostics=f"item {position}: {i.diagnostics or ''}")
                  for i in issues]
    click.echo(json.dumps(operation_outcome(issues), ensure_ascii=False), err=True)


def emit_result(document: Any, single: bool) -> None:
    """Pretty JSON for a single input, one compact line per item otherwise."""
    if single:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def run_items(stream: IO[str], convert: Callable[[Any], Any]) -> None:
    """Read the input, convert every item, print results and outcomes; exit 1 if any failed."""
    try:
        items, single = read_documents(stream)
    except InputError as exc:
        emit_outcome([exc.issue], None)
        sys.exit(EXIT_INVALID)
    failed = False
    for position, item in enumerate(items):
        try:
            result = convert(item)
        except IastmError as exc:
            failed = True
            emit_outcome(exc.issues, None if single else position)
            continue
        emit_result(result, single)
    if failed:
        sys.exit(EXIT_INVALID)


@click.group()
@click.version_option(__version__, prog_name="fhir-iastm")
def main() -> None:
    """fhir-iastm: IASTM session records <-> FHIR R4."""


# ---------------------------------------------------------------- map


@main.command("map")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--canonical-base", envvar="IASTM_CANONICAL_BASE", default=DEFAULT_CANONICAL_BASE,
              show_default=True, help="Base of our canonical URLs (env IASTM_CANONICAL_BASE).")
@click.option("--include-cpt/--no-include-cpt", envvar="IASTM_INCLUDE_CPT", default=False,
              help="Add CPT codings (needs an AMA licence; env IASTM_INCLUDE_CPT).")
@click.option("--claim-us-core/--no-claim-us-core", envvar="IASTM_CLAIM_US_CORE", default=False,
              help="Also list US Core profiles in meta.profile (env IASTM_CLAIM_US_CORE).")
def map_command(source: IO[str], canonical_base: str, include_cpt: bool,
                claim_us_core: bool) -> None:
    """Map internal record(s) from SOURCE (file or -) to FHIR transaction Bundle(s)."""
    from fhir_iastm.mapping import MappingSettings, to_fhir
    from fhir_iastm.records import load_record

    settings = MappingSettings(canonical_base=canonical_base, include_cpt=include_cpt,
                               claim_us_core=claim_us_core)
    run_items(source, lambda item: to_fhir(load_record(item), settings))


# ---------------------------------------------------------------- unmap


@main.command("unmap")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--canonical-base", envvar="IASTM_CANONICAL_BASE", default=DEFAULT_CANONICAL_BASE,
              show_default=True, help="Base of our canonical URLs (env IASTM_CANONICAL_BASE).")
def unmap_command(source: IO[str], canonical_base: str) -> None:
    """Map FHIR Bundle(s) (or one JSON array of resources) from SOURCE back to record JSON."""
    from fhir_iastm.mapping import MappingSettings, from_fhir
    from fhir_iastm.model import to_dict

    settings = MappingSettings(canonical_base=canonical_base)

    def convert(item: Any) -> Any:
        return to_dict(from_fhir(item, settings))

    run_items(io.StringIO(_one_session_if_resource_list(source.read())), convert)


def _one_session_if_resource_list(text: str) -> str:
    """A JSON array of resources (not of Bundles) is ONE session: wrap it in one Bundle."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(value, list) and not all(
        isinstance(v, dict) and v.get("resourceType") == "Bundle" for v in value
    ):
        entries = [{"resource": v} for v in value]
        return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    return text


# ---------------------------------------------------------------- push / pull / load-profiles
# FHIR server commands (MAPPING decisions 5-13). Exit codes: 0 every record pushed or unchanged;
# 1 an invalid record, a record the server rejected or one it already holds newer (superseded);
# 3 the FHIR server failed (unreachable, 5xx, auth) — 3 wins over 1.

EXIT_SERVER = 3


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


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--server / --token / --canonical-base, shared by the server commands."""
    command = click.option("--canonical-base", envvar="IASTM_CANONICAL_BASE",
                           default=DEFAULT_CANONICAL_BASE, show_default=True,
                           help="Base of our canonical URLs (env IASTM_CANONICAL_BASE).")(command)
    command = click.option("--token", envvar="IASTM_FHIR_TOKEN", default=None,
                           help="Bearer token for the server (env IASTM_FHIR_TOKEN).")(command)
    return click.option("--server", envvar="IASTM_FHIR_BASE_URL", required=True,
                        help="FHIR R4 base URL, e.g. http://127.0.0.1:18080/fhir "
                             "(env IASTM_FHIR_BASE_URL).")(command)


def _client(server: str, token: str | None) -> Any:
    from fhir_iastm.errors import ConfigError
    from fhir_iastm.service import make_client

    try:
        return make_client(server, token)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--server") from exc


def _load_push_inputs(files: tuple[IO[str], ...]) -> tuple[list[Any], bool]:
    """Every valid record of FILES (invalid ones reported on stderr); whether any was invalid."""
    from fhir_iastm.records import load_record

    records, invalid = [], False
    for stream in files:
        try:
            items, single = read_documents(stream)
        except InputError as exc:
            emit_outcome([exc.issue], None)
            invalid = True
            continue
        for position, item in enumerate(items):
            try:
                records.append(load_record(item))
            except IastmError as exc:
                invalid = True
                emit_outcome(exc.issues, None if single else position)
    first = {r.session_id: i for i, r in reversed(list(enumerate(records)))}
    records.sort(key=lambda r: (first[r.session_id], r.record_version))  # decision 9 order
    return records, invalid


def _failure_line(record: Any, exc: IastmError, status: str = "error") -> dict[str, Any]:
    return {"session_id": record.session_id, "record_version": record.record_version,
            "status": status, "operationOutcome": operation_outcome(exc.issues)}


@main.command("push")
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
@_server_options
def push_command(files: tuple[IO[str], ...], server: str, token: str | None,
                 canonical_base: str) -> None:
    """Push record(s) from FILES to a FHIR server: one JSON result line per record on stdout."""
    from fhir_iastm.mapping import MappingSettings
    from fhir_iastm.service import push_many

    records, failed = _load_push_inputs(files)
    client, settings = _client(server, token), MappingSettings(canonical_base=canonical_base)
    server_down = False
    results = push_many(client, records, settings=settings)
    with click.progressbar(results, length=len(records), label="push", file=sys.stderr) as bar:
        for record, outcome in bar:
            if isinstance(outcome, IastmError):
                server_down = True
                emit_result(_failure_line(record, outcome), False)
                continue
            failed = failed or outcome.status not in ("pushed", "unchanged")
            emit_result(outcome.to_json(), False)
    if server_down:
        sys.exit(EXIT_SERVER)
    if failed:
        sys.exit(EXIT_INVALID)


@main.command("pull")
@_server_options
@click.option("--patient", "patient_mrn", default=None, help="Only this patient's MRN.")
@click.option("--clinic", "clinic_id", default=None,
              help="Only this clinic's patients (qualifies --patient's MRN system).")
@click.option("--since", default=None,
              help="Only sessions updated at or after DATE[Thh:mm:ss±hh:mm].")
@click.option("--session", "session_id", default=None, help="Only this session_id.")
def pull_command(server: str, token: str | None, canonical_base: str, patient_mrn: str | None,
                 clinic_id: str | None, since: str | None, session_id: str | None) -> None:
    """Pull sessions from a FHIR server: one record per line (JSON Lines) on stdout."""
    from fhir_iastm.errors import FhirServerError
    from fhir_iastm.mapping import MappingSettings
    from fhir_iastm.model import to_dict
    from fhir_iastm.pull import PullError
    from fhir_iastm.service import pull

    if since is not None and not _valid_since(since):
        raise click.BadParameter("expected YYYY-MM-DD or an RFC 3339 date-time",
                                 param_hint="--since")
    results = pull(_client(server, token), session_id=session_id, patient_mrn=patient_mrn,
                   clinic_id=clinic_id, since=since,
                   settings=MappingSettings(canonical_base=canonical_base))
    failed = False
    try:
        with click.progressbar(results, label="pull", file=sys.stderr) as bar:
            for result in bar:
                if isinstance(result, PullError):
                    failed = True
                    click.echo(json.dumps(result.to_json(), ensure_ascii=False), err=True)
                else:
                    emit_result(to_dict(result), False)
    except FhirServerError as exc:
        emit_outcome(exc.issues, None)
        sys.exit(EXIT_SERVER)
    if failed:
        sys.exit(EXIT_INVALID)


@main.command("load-profiles")
@_server_options
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of conformance resources (default: the repository's profiles/).")
def load_profiles_command(server: str, token: str | None, canonical_base: str,
                          profiles_dir: str | None) -> None:
    """PUT every profiles/ resource to a FHIR server (so its $validate knows our profiles)."""
    from fhir_iastm.config import DEFAULT_PROFILES_DIR
    from fhir_iastm.errors import ConfigError, FhirServerError
    from fhir_iastm.service import upload_profiles

    del canonical_base  # the profiles carry their own canonical URLs
    try:
        written = upload_profiles(_client(server, token), profiles_dir or DEFAULT_PROFILES_DIR)
    except ConfigError as exc:
        emit_outcome(exc.issues, None)
        sys.exit(EXIT_INVALID)
    except FhirServerError as exc:
        emit_outcome(exc.issues, None)
        sys.exit(EXIT_SERVER)
    emit_result({"uploaded": len(written), "resources": written}, True)


# ---------------------------------------------------------------- validate (validation engineer)


@main.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.File("r", encoding="utf-8"))
@click.option("--profile", default=None,
              help="Validate against this profile URL instead of each resource's meta.profile.")
@click.option("--profiles", "profiles_dir", envvar="IASTM_PROFILES_DIR", default=None,
              type=click.Path(file_okay=False),
              help="Folder of conformance resources (default: the repository's profiles/).")
def validate_command(files: tuple[IO[str], ...], profile: str | None,
                     profiles_dir: str | None) -> None:
    """Validate FHIR resources / Bundles (FILE or - ; JSON, array or JSON Lines) against profiles/.

    One OperationOutcome per input document on stdout (JSON Lines when several); exit 1 when any
    has an error or fatal issue (broken JSON included), else 0.
    """
    from pathlib import Path

    import fhir_iastm
    from fhir_iastm.errors import ConfigError, has_errors
    from fhir_iastm.profiles import load_profiles
    from fhir_iastm.validation import validate

    default = Path(fhir_iastm.__file__).parent.parent / "profiles"
    folder = Path(profiles_dir) if profiles_dir else default
    try:
        index = load_profiles(folder)
    except ConfigError as exc:
        emit_outcome(exc.issues, None)
        sys.exit(EXIT_INVALID)
    outcomes: list[list[Issue]] = []
    for stream in files:
        try:
            items, _single = read_documents(stream)
        except InputError as exc:
            outcomes.append([exc.issue])
            continue
        except UnicodeDecodeError as exc:
            issue = Issue("error", "structure", None, f"not UTF-8 text: {exc}", "E_FORMAT")
            outcomes.append([issue])
            continue
        outcomes.extend(validate(item, index, profile=profile) for item in items)
    for issues in outcomes:
        emit_result(operation_outcome(issues), len(outcomes) == 1)
    if any(has_errors(issues) for issues in outcomes):
        sys.exit(EXIT_INVALID)


def _register_service_commands() -> None:
    from fhir_iastm.cli_service import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_service_commands()

__all__ = ["main"]
