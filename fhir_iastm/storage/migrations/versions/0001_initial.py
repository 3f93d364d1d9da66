"""Initial store: records, record_versions, sync_state, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
PENDING = sa.text("done_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("patient_mrn", sa.String(64), nullable=False),
        sa.Column("session_start", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_records"),
    )
    op.create_index("ix_records_patient_mrn_clinic_id", "records", ["patient_mrn", "clinic_id"])
    op.create_index("ix_records_updated_at", "records", ["updated_at"])
    op.create_index("ix_records_status", "records", ["status"])

    op.create_table(
        "record_versions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_record_versions"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["records.session_id"], name="fk_record_versions_session_id_records"
        ),
        sa.UniqueConstraint(
            "session_id", "record_version", name="uq_record_versions_session_id_record_version"
        ),
    )

    op.create_table(
        "sync_state",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pushed_version", sa.Integer(), nullable=True),
        sa.Column("pushed_hash", sa.String(64), nullable=True),
        sa.Column("pushed_identifiers", JSON, nullable=True),
        sa.Column("fhir_ids", JSON, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", TS, nullable=True),
        sa.Column("last_pushed_at", TS, nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_outcome", JSON, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_sync_state"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["records.session_id"], name="fk_sync_state_session_id_records"
        ),
    )
    op.create_index("ix_sync_state_state", "sync_state", ["state"])

    op.create_table(
        "outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["records.session_id"], name="fk_outbox_session_id_records"
        ),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["next_attempt_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_outbox_pending_session",
        "outbox",
        ["session_id", "record_version", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )

    op.create_table(
        "audit",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_session_id", "audit", ["session_id"])


def downgrade() -> None:
    for table in ("audit", "outbox", "sync_state", "record_versions", "records"):
        op.drop_table(table)
