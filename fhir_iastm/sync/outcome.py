"""The result of pushing one record version (docs/decisions.md#d7 to #d10).

``push.push_record`` returns it; the outbox worker stores it (``storage.OutcomeLike``: status,
identifiers, fhir_ids, operation_outcome, error_code); the CLI prints :meth:`PushOutcome.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("pushed", "unchanged", "superseded", "rejected")


@dataclass(frozen=True)
class PushOutcome:
    """Result of pushing one record version (the worker stores it; the CLI prints ``to_json``).

    ``identifiers``: session-owned business identifiers (``system|value``) now on the server for
    this version — the next version's retraction diff. ``fhir_ids``: identifier -> ``Type/id``.
    """

    status: str
    session_id: str
    record_version: int
    record_hash: str | None = None
    identifiers: tuple[str, ...] = ()
    fhir_ids: Mapping[str, str] = field(default_factory=dict)
    operation_outcome: dict[str, Any] | None = None
    error_code: str | None = None
    server_version: int | None = None
    retracted: tuple[str, ...] = ()
    sent: bool = False
    note: str | None = None

    @property
    def resource_ids(self) -> tuple[str, ...]:
        """Every ``Type/id`` written or found for this session."""
        return tuple(sorted(set(self.fhir_ids.values())))

    @property
    def ok(self) -> bool:
        """True for pushed, unchanged and superseded."""
        return self.status != "rejected"

    def to_json(self) -> dict[str, Any]:
        """The CLI's one JSON result line."""
        out: dict[str, Any] = {
            "session_id": self.session_id,
            "record_version": self.record_version,
            "status": self.status,
        }
        if self.server_version is not None:
            out["server_version"] = self.server_version
        if self.resource_ids:
            out["resources"] = list(self.resource_ids)
        if self.retracted:
            out["retracted"] = list(self.retracted)
        if self.note:
            out["note"] = self.note
        if self.operation_outcome is not None:
            out["operationOutcome"] = self.operation_outcome
        return out


__all__ = ["STATUSES", "PushOutcome"]
