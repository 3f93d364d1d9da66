"""The CLI's input and output: JSON / JSON Lines documents in, JSON results on stdout,
OperationOutcomes on stderr, and the exit codes.

Exit codes: 0 OK, 1 invalid record / mapping / profile, 2 usage error, 3 FHIR server.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

import click

from fhir_iastm.errors import IastmError, Issue, operation_outcome

EXIT_INVALID = 1
EXIT_SERVER = 3


class InputError(Exception):
    """The input is not JSON / JSON Lines of the expected shape; carries the issue to report."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.diagnostics)
        self.issue = issue




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


def emit_outcome(issues: list[Issue], position: int | None, base: str) -> None:
    """One OperationOutcome line on stderr, its project URLs under the canonical ``base``;
    ``position`` names the item of a multi-item input."""
    if position is not None:
        issues = [dataclasses.replace(i, diagnostics=f"item {position}: {i.diagnostics or ''}")
                  for i in issues]
    click.echo(json.dumps(operation_outcome(issues, base=base), ensure_ascii=False), err=True)


def emit_result(document: Any, single: bool) -> None:
    """Pretty JSON for a single input, one compact line per item otherwise."""
    if single:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def emit_pulled(results: Iterable[Any], base: str) -> None:
    """Pulled sessions: each record as one line on stdout, each ``PullError`` on stderr (project
    URLs under the canonical ``base``); exit 3 when the server fails, 1 when a session could not
    be mapped back."""
    from fhir_iastm.errors import FhirServerError
    from fhir_iastm.records.model import to_dict
    from fhir_iastm.service import PullError

    failed = False
    try:
        for result in results:
            if isinstance(result, PullError):
                failed = True
                click.echo(json.dumps(result.to_json(base), ensure_ascii=False), err=True)
            else:
                emit_result(to_dict(result), False)
    except FhirServerError as exc:
        emit_outcome(exc.issues, None, base)
        sys.exit(EXIT_SERVER)
    if failed:
        sys.exit(EXIT_INVALID)


def run_items(stream: IO[str], convert: Callable[[Any], Any], base: str) -> None:
    """Read the input, convert every item, print results and outcomes (under the canonical
    ``base``); exit 1 if any failed."""
    try:
        items, single = read_documents(stream)
    except InputError as exc:
        emit_outcome([exc.issue], None, base)
        sys.exit(EXIT_INVALID)
    failed = False
    for position, item in enumerate(items):
        try:
            result = convert(item)
        except IastmError as exc:
            failed = True
            emit_outcome(exc.issues, None if single else position, base)
            continue
        emit_result(result, single)
    if failed:
        sys.exit(EXIT_INVALID)


__all__ = [
    "EXIT_INVALID",
    "EXIT_SERVER",
    "InputError",
    "emit_outcome",
    "emit_pulled",
    "emit_result",
    "read_documents",
    "run_items",
]
