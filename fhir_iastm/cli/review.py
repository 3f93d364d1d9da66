"""``push --dry-run`` and ``push --review`` (docs/targets.md#dry-run): each record's plan
against the server as it is now, its readable diff, and with ``--review`` the plan written when
confirmed. The exit codes of ``push`` (``cli.remote``).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fhir_iastm.cli.io import EXIT_INVALID, EXIT_SERVER, Run, emit_result, failure_line
from fhir_iastm.config import Settings
from fhir_iastm.errors import IastmError


def dry_run_push(client: Any, run: Run, pairs: list[tuple[Any, dict[str, Any]]],
                 settings: Settings, failed: bool, *, review: bool = False) -> None:
    """``push --dry-run``: one plan line per record (a readable diff after it on a terminal);
    with ``review``, each plan is shown on stderr and applied when confirmed. The exit codes of
    ``push``."""
    from fhir_iastm.service import dry_run_many, mapping_settings

    server_down, tty = False, sys.stdout.isatty()
    results = dry_run_many(client, [record for record, _ in pairs],
                           settings=mapping_settings(settings))
    for (record, plan), (_, tag) in zip(results, pairs, strict=True):
        if isinstance(plan, IastmError):
            server_down = True
            run.count("not planned (server failure)")
            emit_result({**failure_line(record, plan, settings.canonical_base), "input": tag},
                        False)
            continue
        emit_result({**plan.to_json(), "input": tag}, False)
        if tty or review:
            click.echo("\n".join(_diff_lines(plan)), err=review)
        status = _apply(client, plan, tag) if review else f"would be {plan.status}"
        run.count(status)
        failed = failed or status.split()[-1] not in ("pushed", "unchanged", "skipped")
    run.summary()
    if server_down:
        sys.exit(EXIT_SERVER)
    if failed:
        sys.exit(EXIT_INVALID)


def _apply(client: Any, plan: Any, tag: dict[str, Any]) -> str:
    """Ask, then write the plan (``--review``); the status counted for it."""
    from fhir_iastm.errors import FhirConflictError
    from fhir_iastm.service import apply_plan

    if plan.transaction is None:
        return plan.status
    if not click.confirm(f"apply this plan to {plan.session_id}?", err=True, default=False):
        return "skipped"
    try:
        outcome = apply_plan(client, plan)
    except FhirConflictError:
        emit_result({"session_id": plan.session_id, "record_version": plan.record_version,
                     "status": "conflict", "input": tag,
                     "note": "the server changed since the dry run: nothing written; "
                             "run it again"}, False)
        return "conflict"
    emit_result({**outcome.to_json(), "input": tag}, False)
    return str(outcome.status)


def _diff_lines(plan: Any) -> list[str]:
    from fhir_iastm.service import readable_patch

    lines = [f"{plan.session_id} v{plan.record_version}: would be {plan.status}"]
    for entry in plan.entries:
        where = entry.ref or entry.full_url
        lines.append(f" {entry.action:<9} {entry.resource_type} {where}"
                     + (f" ({entry.note})" if entry.note else ""))
        if entry.action != "create":
            lines += readable_patch(list(entry.patch))
    return lines


__all__ = ["dry_run_push"]
