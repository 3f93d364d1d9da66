"""Offline commands: ``map``, ``unmap``, ``validate`` and ``schema`` (no server, no database).

Input of ``map`` and ``unmap``: one JSON document, a JSON array, or JSON Lines, read as it
arrives (``cli.inputs``). Output: a single input object gives one pretty-printed JSON document; an
array or JSON Lines gives **JSON Lines** (one compact document per input item, in input order,
each written as soon as it is made; invalid items are skipped on stdout and reported on stderr,
one OperationOutcome line per item, its diagnostics starting with ``file:line (session S)``),
then a one-line summary on stderr.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import IO, Any

import click

from fhir_iastm.cli.inputs import session_of
from fhir_iastm.cli.io import EXIT_INVALID, Run, emit_outcome, emit_result, file_name, run_items
from fhir_iastm.cli.options import canonical_base_option, load_settings, profiles_option
from fhir_iastm.errors import operation_outcome


@click.command("map")
@click.argument("files", nargs=-1, type=click.File("rb"))
@canonical_base_option
@click.option("--include-cpt/--no-include-cpt", default=None,
              help="Add CPT codings (needs an AMA licence; default: IASTM_INCLUDE_CPT).")
@click.option("--claim-us-core/--no-claim-us-core", default=None,
              help="Also list US Core profiles in meta.profile (default: IASTM_CLAIM_US_CORE).")
@click.option("--performed-as-datetime/--no-performed-as-datetime", default=None,
              help="Receiver option: Procedure.performedDateTime instead of performedPeriod "
                   "(default: IASTM_PERFORMED_AS_DATETIME).")
@click.option("--strip-profiles/--no-strip-profiles", default=None,
              help="Receiver option: no meta.profile on any resource "
                   "(default: IASTM_STRIP_PROFILES).")
def map_command(files: tuple[IO[bytes], ...], canonical_base: str | None,
                include_cpt: bool | None, claim_us_core: bool | None,
                performed_as_datetime: bool | None, strip_profiles: bool | None) -> None:
    """Map internal record(s) from FILES (default -) to FHIR transaction Bundle(s)."""
    from fhir_iastm.mapping import to_fhir
    from fhir_iastm.records import load_record
    from fhir_iastm.service import mapping_settings

    settings = mapping_settings(load_settings(
        canonical_base=canonical_base, include_cpt=include_cpt, claim_us_core=claim_us_core,
        performed_as_datetime=performed_as_datetime, strip_profiles=strip_profiles))

    def convert(item: Any) -> Any:
        return to_fhir(load_record(item), settings)

    stdin: IO[bytes] = sys.stdin.buffer
    run_items("map", files or (stdin,), convert, settings.base)


@click.command("unmap")
@click.argument("source", type=click.File("rb"), default="-")
@canonical_base_option
def unmap_command(source: IO[bytes], canonical_base: str | None) -> None:
    """Map FHIR Bundle(s) (or one JSON array of resources) from SOURCE back to record JSON."""
    from fhir_iastm.mapping import from_fhir
    from fhir_iastm.records.model import to_dict
    from fhir_iastm.service import mapping_settings

    settings = mapping_settings(load_settings(canonical_base=canonical_base))

    def convert(item: Any) -> Any:
        return to_dict(from_fhir(item, settings))

    stream = _Named(_one_session_if_resource_list(source.read()))
    stream.name = file_name(source)
    run_items("unmap", (stream,), convert, settings.base)


class _Named(io.BytesIO):
    """Bytes read once, under the name of the file they came from."""

    name = "-"


def _one_session_if_resource_list(data: bytes) -> bytes:
    """A JSON array of resources (not of Bundles) is ONE session: wrap it in one Bundle."""
    from fhir_iastm.jsonin import JsonInputError, parse

    try:
        value = parse(data)
    except JsonInputError:
        return data
    if isinstance(value, list) and not all(
        isinstance(v, dict) and v.get("resourceType") == "Bundle" for v in value
    ):
        entries = [{"resource": v} for v in value]
        return json.dumps({"resourceType": "Bundle", "type": "collection",
                           "entry": entries}).encode()
    return data


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@click.option("--profile", default=None,
              help="Validate against this profile URL instead of each resource's meta.profile.")
@profiles_option
@canonical_base_option
@click.option("--performed-as-datetime", is_flag=True, default=False,
              help="Validate output mapped with that receiver option (its profile variant).")
@click.option("--stripped", is_flag=True, default=False,
              help="Output mapped with strip_profiles: each resource is checked against the "
                   "profile it was built for.")
def validate_command(files: tuple[IO[bytes], ...], profile: str | None,
                     profiles_dir: Path | None, canonical_base: str | None,
                     performed_as_datetime: bool, stripped: bool) -> None:
    """Validate FHIR resources / Bundles (FILE or - ; JSON, array or JSON Lines) against profiles/
    (rebased to the canonical base).

    One file with one document: its OperationOutcome, pretty-printed. Otherwise one line per
    document, written as it is checked: {"input": {file, line, item, session_id}, "outcome":
    OperationOutcome}; then a summary on stderr. Exit 1 when any has an error or fatal issue
    (unreadable input included), else 0.
    """
    from fhir_iastm.errors import ConfigError, has_errors
    from fhir_iastm.mapping.receiver import claim_profiles
    from fhir_iastm.mapping.trace import record_field
    from fhir_iastm.profiles import load_profiles, performed_as_datetime_variant
    from fhir_iastm.validation import validate

    settings = load_settings(profiles_dir=profiles_dir, canonical_base=canonical_base)
    try:
        index = load_profiles(settings.profiles_dir, settings.canonical_base)
        if performed_as_datetime:
            index = performed_as_datetime_variant(index)
    except ConfigError as exc:
        emit_outcome(exc.issues, None, settings.canonical_base)
        sys.exit(EXIT_INVALID)
    run = Run("validate", files)
    for item in run.items():
        value = (claim_profiles(item.value, settings.canonical_base)
                 if stripped and not item.issue else item.value)
        issues = ([item.issue] if item.issue else
                  validate(value, index, profile=profile, trace=record_field))
        run.count("with errors" if has_errors(issues) else "valid")
        if len(files) == 1 and item.single:
            emit_result(operation_outcome(issues, base=settings.canonical_base), True)
            continue
        tag = item.source.to_json(session_of(item.value))
        outcome = operation_outcome(issues, base=settings.canonical_base)
        emit_result({"input": tag, "outcome": outcome}, False)
    if not (len(files) == 1 and run.progress.items == 1):
        run.summary()
    if run.counts["with errors"]:
        sys.exit(EXIT_INVALID)


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema (draft 2020-12) of the internal record (docs/record.md)."""
    from fhir_iastm.records.contract import record_json_schema

    emit_result(record_json_schema(), True)


COMMANDS = (map_command, unmap_command, validate_command, schema_command)

__all__ = ["COMMANDS"]
