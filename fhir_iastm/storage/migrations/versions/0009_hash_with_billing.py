"""The record hash counts ``billing`` (docs/decisions.md#hash-with-billing): recompute the stored
hashes of the record versions that have billing lines.

A record without ``billing`` hashes as before. For every ``record_versions`` row whose body has
``billing`` and whose stored hash is the old scheme's (billing left out), the hash becomes the new
one, in ``record_versions``, in ``records`` (the current version) and in ``sync_state.pushed_hash``
(the version last pushed), so re-posting or re-importing an unchanged record stays "unchanged"
and no push is queued for it. ``downgrade`` restores the old scheme's hashes the same way.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_PAGE = 1000
_VERSIONS = sa.table(
    "record_versions",
    sa.column("id", sa.Integer),
    sa.column("session_id", sa.String),
    sa.column("record_version", sa.Integer),
    sa.column("record_hash", sa.String),
    sa.column("body", sa.JSON),
)


def _billed(conn: sa.Connection) -> Iterator[list[Any]]:
    """Pages of the record_versions rows, in id order (bodies read a page at a time)."""
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_VERSIONS.c.id, _VERSIONS.c.session_id, _VERSIONS.c.record_version,
                      _VERSIONS.c.record_hash, _VERSIONS.c.body)
            .where(_VERSIONS.c.id > last).order_by(_VERSIONS.c.id).limit(_PAGE)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        yield [r for r in rows if isinstance(r.body, dict) and r.body.get("billing") is not None]


def _rehash(to_legacy: bool) -> None:
    """Rewrite the hashes of billed versions from one scheme to the other."""
    from fhir_iastm.records import record_hash
    from fhir_iastm.records.model import SessionRecord, from_dict

    conn = op.get_bind()
    statements = [
        sa.text("UPDATE record_versions SET record_hash = :b_new "
                "WHERE session_id = :b_sid AND record_version = :b_version "
                "AND record_hash = :b_old"),
        sa.text("UPDATE records SET record_hash = :b_new "
                "WHERE session_id = :b_sid AND record_version = :b_version "
                "AND record_hash = :b_old"),
        sa.text("UPDATE sync_state SET pushed_hash = :b_new "
                "WHERE session_id = :b_sid AND pushed_version = :b_version "
                "AND pushed_hash = :b_old"),
    ]
    for page in _billed(conn):
        changes = []
        for row in page:
            record = from_dict(SessionRecord, row.body)
            old = record_hash(record, legacy=not to_legacy)
            new = record_hash(record, legacy=to_legacy)
            if row.record_hash == old and old != new:
                changes.append({"b_sid": row.session_id, "b_version": row.record_version,
                                "b_old": old, "b_new": new})
        for statement in statements if changes else []:
            conn.execute(statement, changes)


def upgrade() -> None:
    _rehash(to_legacy=False)


def downgrade() -> None:
    _rehash(to_legacy=True)
