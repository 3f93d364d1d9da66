"""The CLI's output and exit codes: JSON results on stdout as they are made, OperationOutcomes and
a one-line summary on stderr, a progress line on stderr only when stderr is a terminal.

Exit codes: 0 OK, 1 invalid input (record, mapping, profile, malformed or not-UTF-8 file),
2 usage error, 3 FHIR server failure (unreachable, 5xx, 401/403), 4 database failure (unreachable,
locked, missing). A failure of the server or the database is one line on stderr, never a
traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

import click

from fhir_iastm.cli.inputs import Item, Progress, Source, iter_items, session_of
from fhir_iastm.errors import IastmError, Issue, operation_outcome

EXIT_INVALID = 1
EXIT_SERVER = 3
EXIT_STORE = 4

F = TypeVar("F", bound=Callable[..., Any])


def label(source: Source, value: Any = None) -> str:
    """``file:line (session S)`` — what a message about one input item starts with."""
    session = session_of(value)
    return source.label() + (f" (session {session})" if session else "")


def emit_outcome(issues: list[Issue], where: str | None, base: str) -> None:
    """One OperationOutcome line on stderr, its project URLs under the canonical ``base``;
    ``where`` (an input label) prefixes each issue."""
    if where is not None:
        issues = [dataclasses.replace(i, diagnostics=f"{where}: {i.diagnostics or ''}")
                  for i in issues]
    click.echo(json.dumps(operation_outcome(issues, base=base), ensure_ascii=False), err=True)


def emit_result(document: Any, single: bool) -> None:
    """Pretty JSON for a single input, one compact line per item otherwise."""
    if single:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def failure_line(record: Any, exc: IastmError, base: str) -> dict[str, Any]:
    """The result line of a record a server failure left unsent (or unplanned)."""
    return {"session_id": record.session_id, "record_version": record.record_version,
            "status": "error", "operationOutcome": operation_outcome(exc.issues, base=base)}


def file_name(stream: IO[Any]) -> str:
    name = getattr(stream, "name", "-")
    return "-" if not isinstance(name, str) or name.startswith("<") else name


class Run:
    """One command over its input files: items as read, counts, progress and the summary."""

    def __init__(self, command: str, files: tuple[IO[bytes], ...]) -> None:
        self.command, self.files = command, files
        self.progress = Progress()
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self._shown = 0.0
        self._total = _total_bytes(files)
        self.tty = sys.stderr.isatty()

    def items(self) -> Iterator[Item]:
        """Every item of every file, in order."""
        for stream in self.files:
            for item in iter_items(stream, file_name(stream), progress=self.progress):
                self.progress.items += 1
                yield item
                self._tick()

    def count(self, outcome: str) -> None:
        """Count one finished item under ``outcome`` (ok, invalid, rejected, ...)."""
        self.counts[outcome] += 1

    def _tick(self) -> None:
        now = time.monotonic()
        if not self.tty or now - self._shown < 0.2:
            return
        self._shown = now
        share = f", {100 * self.progress.read / self._total:.0f}%" if self._total else ""
        sys.stderr.write(f"\r{self.command}: {self.progress.items} documents{share}\x1b[K")
        sys.stderr.flush()

    def summary(self, *, rate: bool = False) -> None:
        """The one-line summary on stderr (clearing the progress line); with ``rate``, the
        documents per second too."""
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        files = len(self.files)
        elapsed = time.monotonic() - self.started
        speed = f", {self.progress.items / max(elapsed, 1e-9):.0f}/s" if rate else ""
        click.echo(f"{self.command}: {self.progress.items} documents from {files} "
                   f"file{'s' if files != 1 else ''}: {parts or 'nothing done'} "
                   f"({elapsed:.1f} s{speed})", err=True)


def _total_bytes(files: tuple[IO[bytes], ...]) -> int:
    import os

    total = 0
    for stream in files:
        try:
            total += os.fstat(stream.fileno()).st_size
        except (OSError, ValueError, AttributeError):
            return 0
    return total


def run_items(
    command: str, files: tuple[IO[bytes], ...], convert: Callable[[Any], Any], base: str
) -> None:
    """Convert every item of FILES, printing each result as it is made; bad items go to stderr
    tagged with their input (OperationOutcomes under the canonical ``base``); exit 1 if any
    failed."""
    run = Run(command, files)
    single = len(files) == 1
    for item in run.items():
        one = single and item.single
        if item.issue is not None:
            run.count("invalid")
            emit_outcome([item.issue], None if one else label(item.source), base)
            continue
        try:
            result = convert(item.value)
        except IastmError as exc:
            run.count("invalid")
            emit_outcome(exc.issues, None if one else label(item.source, item.value), base)
            continue
        run.count("ok")
        emit_result(result, one)
    if not (single and run.progress.items == 1):
        run.summary()
    if run.counts["invalid"]:
        sys.exit(EXIT_INVALID)


def store_errors(func: F) -> F:
    """Turn a database failure in a command into one line on stderr and exit 4."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from fhir_iastm.service import DatabaseError, database_reason

        try:
            return func(*args, **kwargs)
        except DatabaseError as exc:
            click.echo(f"fhir-iastm: database failure: {database_reason(exc)}", err=True)
            sys.exit(EXIT_STORE)

    return wrapper  # type: ignore[return-value]


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


__all__ = [
    "EXIT_INVALID",
    "EXIT_SERVER",
    "EXIT_STORE",
    "Run",
    "emit_outcome",
    "emit_pulled",
    "emit_result",
    "failure_line",
    "file_name",
    "label",
    "run_items",
    "store_errors",
]
