"""SMART clients, the replay store of client-assertion ids, and our signing key.

``AuthStore(store)`` shares the store's engine and transaction discipline. Disabling a client is
a flag (its row stays, so its id is never reused); an assertion id is remembered until its
assertion expires, then purged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_iastm.storage.schema import auth_client, auth_jti, auth_key

if TYPE_CHECKING:
    from fhir_iastm.storage.store import Store


@dataclass(frozen=True)
class ClientRow:
    """A registered backend-service client."""

    client_id: str
    name: str
    jwks_url: str | None
    jwks: dict[str, Any] | None
    scope: str
    enabled: bool
    created_at: datetime


def _client(row: Any) -> ClientRow:
    return ClientRow(row.client_id, row.name, row.jwks_url, row.jwks, row.scope,
                     bool(row.enabled), row.created_at)


class AuthStore:
    """Clients, seen assertion ids and the signing key, in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add_client(self, name: str, scope: str, *, jwks_url: str | None = None,
                   jwks: dict[str, Any] | None = None) -> ClientRow:
        """Register a client (a new random client_id); exactly one of jwks_url / jwks."""
        if (jwks_url is None) == (jwks is None):
            raise ValueError("give exactly one of jwks_url and jwks")
        row: dict[str, Any] = {
            "client_id": uuid.uuid4().hex, "name": name, "jwks_url": jwks_url, "jwks": jwks,
            "scope": scope, "enabled": True, "created_at": self.store.clock()}
        with self.store.write() as conn:
            conn.execute(insert(auth_client), row)
        return ClientRow(**row)

    def get_client(self, client_id: str) -> ClientRow | None:
        """A client by id (None when unknown)."""
        with self.store.read() as conn:
            row = conn.execute(select(auth_client).where(
                auth_client.c.client_id == client_id)).first()
        return None if row is None else _client(row)

    def list_clients(self) -> list[ClientRow]:
        """Every client, oldest first."""
        with self.store.read() as conn:
            rows = conn.execute(select(auth_client).order_by(auth_client.c.created_at,
                                                             auth_client.c.client_id))
            return [_client(r) for r in rows]

    def disable_client(self, client_id: str) -> bool:
        """Disable a client; False when it is not registered."""
        with self.store.write() as conn:
            done = conn.execute(update(auth_client).where(auth_client.c.client_id == client_id)
                                .values(enabled=False))
            return bool(done.rowcount)

    def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record an assertion id until ``expires_at``; False when it was seen before (replay)."""
        now = self.store.clock()
        try:
            with self.store.write() as conn:
                conn.execute(delete(auth_jti).where(auth_jti.c.expires_at < now))
                conn.execute(insert(auth_jti), {"client_id": client_id, "jti": jti[:255],
                                                "expires_at": max(expires_at, now)
                                                + timedelta(seconds=60)})
        except IntegrityError:
            return False
        return True

    def signing_key(self, new: tuple[str, str]) -> tuple[str, str]:
        """Our (kid, PEM) signing key: the stored one, else ``new`` stored now (every process
        of one database then signs and checks with the same key: the oldest stored one wins)."""
        for _ in range(2):
            with self.store.read() as conn:
                oldest = auth_key.select().order_by(auth_key.c.created_at, auth_key.c.kid)
                row = conn.execute(oldest.limit(1)).first()
            if row is not None:
                return row.kid, row.pem
            try:
                with self.store.write() as conn:
                    conn.execute(insert(auth_key), {"kid": new[0], "pem": new[1],
                                                    "created_at": self.store.clock()})
            except IntegrityError:  # pragma: no cover - a racing process stored its key
                continue
        return new


__all__ = ["AuthStore", "ClientRow"]
