"""Offline commands: ``map``, ``unmap`` and ``validate`` (no server, no database).

Input of ``map`` and ``unmap``: one JSON document, a JSON array, or JSON Lines. Output: a single
input object gives one pretty-printed JSON document; an array or JSON Lines gives **JSON Lines**
(one compact document per input item, in input order; invalid items are skipped on stdout and
reported on stderr, one OperationOutcome line per item).
"""

from __future__ import annotations

import io
import json
import sys
from typing import IO, Any

import click

from fhir_iastm.cli.io import (
    EXIT_INVALID,
    InputError,
    emit_outcome,
    emit_result,
    read_documents,
    run_items,
)
from fhir_iastm.errors import Issue, operation_outcome
from fhir_iastm.mapping.settings import DEFAULT_CANONICAL_BASE


@click.command("map")
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


@click.command("unmap")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--canonical-base", envvar="IASTM_CANONICAL_BASE", default=DEFAULT_CANONICAL_BASE,
              show_default=True, help="Base of our canonical URLs (env IASTM_CANONICAL_BASE).")
def unmap_command(source: IO[str], canonical_base: str) -> None:
    """Map FHIR Bundle(s) (or one JSON array of resources) from SOURCE back to record JSON."""
    from fhir_iastm.mapping import MappingSettings, from_fhir
    from fhir_iastm.records.model import to_dict

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


@click.command("validate")
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
    from fhir_iastm.mapping.trace import record_field
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
        outcomes.extend(
            validate(item, index, profile=profile, trace=record_field) for item in items
        )
    for issues in outcomes:
        emit_result(operation_outcome(issues), len(outcomes) == 1)
    if any(has_errors(issues) for issues in outcomes):
        sys.exit(EXIT_INVALID)


COMMANDS = (map_command, unmap_command, validate_command)

__all__ = ["COMMANDS"]
