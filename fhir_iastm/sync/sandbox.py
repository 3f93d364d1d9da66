"""Sandbox mode (docs/targets.md#sandbox-mode): a run tag on everything a run pushes, and the
clean-up that deletes exactly the resources carrying one run's tag.

The tag is a ``meta.tag`` Coding of the project's CodeSystem ``iastm-sandbox-run`` (under the
canonical base; its codes are the run ids, made up per run, so the CodeSystem lists none).
:func:`clean` searches each type the push writes by ``_tag=system|code`` and deletes what it
finds, in rounds: a resource another one still points at (HAPI answers 409) waits for the next
round, so Observations and adjunct Procedures go before the Procedure they are part of. What the
rounds cannot delete one by one (resources pointing at each other) is deleted in one transaction;
when the server refuses that too (a resource without the tag points at one of them), the
resources are reported as kept, not forced.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_iastm.errors import FhirConflictError
from fhir_iastm.sync.ports import CleanPort

#: The types a push writes, the ones that point at others first.
CLEAN_ORDER = ("Provenance", "Observation", "Procedure", "Condition", "Encounter", "Patient",
               "Practitioner", "Organization", "Device")
MAX_ROUNDS = 5


def tag_system(canonical_base: str) -> str:
    """The system of the sandbox run tags under ``canonical_base``."""
    return f"{canonical_base.rstrip('/')}/CodeSystem/iastm-sandbox-run"


def new_run_tag(now: datetime | None = None) -> str:
    """A run id: ``run-<UTC yyyymmddThhmmss>-<8 hex>`` (unique, sortable, no PHI)."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"run-{moment}-{secrets.token_hex(4)}"


@dataclass
class CleanReport:
    """What :func:`clean` did: deleted resources per type, and the ones kept (still referenced)."""

    deleted: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"deleted": dict(sorted(self.deleted.items())), "total": sum(self.deleted.values()),
                "kept": sorted(self.kept)}


def _tagged(client: CleanPort, rtype: str, token: str) -> list[str]:
    params = [("_tag", token), ("_count", "100")]
    return [str(r["id"]) for r in client.search_all(rtype, params)
            if r.get("resourceType") == rtype and isinstance(r.get("id"), str)]


def clean(client: CleanPort, system: str, code: str) -> CleanReport:
    """Delete every resource tagged ``system|code`` (and nothing else); see the module doc."""
    token = f"{system}|{code}"
    report = CleanReport()
    refused: list[str] = []
    for _ in range(MAX_ROUNDS):
        refused, progress = [], False
        for rtype in CLEAN_ORDER:
            for rid in _tagged(client, rtype, token):
                try:
                    client.delete(rtype, rid)
                except FhirConflictError:  # still referenced: next round
                    refused.append(f"{rtype}/{rid}")
                    continue
                report.deleted[rtype] = report.deleted.get(rtype, 0) + 1
                progress = True
        if not refused or not progress:
            break
    if refused and not _delete_together(client, refused):
        report.kept = refused
    elif refused:
        for ref in refused:
            rtype = ref.split("/")[0]
            report.deleted[rtype] = report.deleted.get(rtype, 0) + 1
    return report


def _delete_together(client: CleanPort, refs: list[str]) -> bool:
    """One transaction deleting ``refs``: resources that point at each other (an Encounter's
    diagnosis and the Condition's encounter) can only go together. False when the server
    refuses (something untagged still points at one of them)."""
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "DELETE", "url": ref}} for ref in refs]}
    try:
        client.transaction(bundle, idempotent=False)
    except FhirConflictError:
        return False
    return True


__all__ = ["CLEAN_ORDER", "CleanReport", "clean", "new_run_tag", "tag_system"]
