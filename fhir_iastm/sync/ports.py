"""The ports of the sync engine: what it needs of a FHIR server and of the outbox store.

``client.FhirClient`` and ``storage.Store`` satisfy them structurally; the service passes them in,
tests pass fakes. These are the only Protocols for the client and the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TypeVar

from fhir_iastm.sync.outcome import PushOutcome

#: A parsed JSON object: a FHIR resource, a Bundle, an entry.
Json = dict[str, Any]


class CapabilitiesView(Protocol):
    """What the push reads of the server's CapabilityStatement (``client.Capabilities``)."""

    @property
    def supports_transaction(self) -> bool: ...

    def conditional_update(self, resource_type: str) -> bool | None: ...

    def conditional_create(self, resource_type: str) -> bool | None: ...

    def update_create(self, resource_type: str) -> bool | None: ...


class FhirPort(Protocol):
    """The FHIR server, as push, retraction and pull use it (``client.FhirClient``)."""

    def capabilities(self) -> CapabilitiesView: ...

    def search(
        self, resource_type: str, params: Any, *, cache_control: str = "no-cache"
    ) -> Json: ...

    def search_all(self, resource_type: str, params: Any) -> Iterator[Json]: ...

    def search_pages(self, resource_type: str, params: Any) -> Iterator[Json]: ...

    def transaction(self, bundle: Json, *, idempotent: bool | None = None) -> Json: ...


class CleanPort(Protocol):
    """The FHIR server, as the sandbox clean-up uses it (``client.FhirClient``)."""

    def search_all(self, resource_type: str, params: Any) -> Iterator[Json]: ...

    def delete(self, resource_type: str, resource_id: str) -> None: ...

    def transaction(self, bundle: Json, *, idempotent: bool | None = None) -> Json: ...


class LastPushedView(Protocol):
    """What the server last accepted for a session: the retraction diff's base
    (docs/decisions.md#d8)."""

    @property
    def record_version(self) -> int: ...

    @property
    def record_hash(self) -> str | None: ...

    @property
    def identifiers(self) -> tuple[str, ...]: ...

    @property
    def fhir_ids(self) -> Mapping[str, str]: ...


class OutboxEntry(Protocol):
    """One claimed outbox entry (``storage.OutboxItem``)."""

    @property
    def id(self) -> int: ...

    @property
    def session_id(self) -> str: ...

    @property
    def record_version(self) -> int: ...

    @property
    def body(self) -> dict[str, Any]: ...

    @property
    def attempts(self) -> int: ...

    @property
    def last_pushed(self) -> LastPushedView | None: ...


Entry = TypeVar("Entry", bound=OutboxEntry)


class OutboxPort(Protocol[Entry]):
    """The push outbox, as the worker uses it (``storage.Store``); each call is one transaction.

    ``complete`` / ``retry_later`` / ``dead_letter`` / ``extend_lease`` raise
    ``errors.LeaseLostError`` when the claim no longer holds. ``retry_later`` with
    ``count_attempt=False`` gives the claim's attempt back (the target was down, not the entry).
    """

    def claim(self, worker_id: str, lease_seconds: float = ...) -> Entry | None: ...

    def complete(self, item: Entry, outcome: PushOutcome) -> None: ...

    def retry_later(
        self, item: Entry, delay: float, outcome: PushOutcome, *, count_attempt: bool = ...
    ) -> None: ...

    def dead_letter(self, item: Entry, outcome: PushOutcome) -> None: ...

    def extend_lease(self, item: Entry, lease_seconds: float) -> Entry: ...

    def bind_canonical_base(self, base: str, *, allow_change: bool = False) -> str | None: ...


__all__ = [
    "CleanPort",
    "CapabilitiesView",
    "FhirPort",
    "LastPushedView",
    "OutboxEntry",
    "OutboxPort",
    "Json",
]
