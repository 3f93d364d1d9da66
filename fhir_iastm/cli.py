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
            raise InputError(Issue("error", "structure", None, f"malformed JSON Lines: line "
                                   f"{number}: {exc.msg} at column {exc.colno}", "E_FORMAT")) from exc
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

    text = source.read()
    stream = _ResourceListAsOne(text)
    run_items(stream, convert)


class _ResourceListAsOne:
    """A JSON array of resources (not of Bundles) is ONE session: wrap it so it is one item."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return
        if isinstance(value, list) and not all(
            isinstance(v, dict) and v.get("resourceType") == "Bundle" for v in value
        ):
            self.text = json.dumps({"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": v} for v in value]})

    def read(self) -> str:
        return self.text


__all__ = ["main"]
