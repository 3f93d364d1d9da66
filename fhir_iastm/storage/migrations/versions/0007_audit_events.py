"""The facade's AuditEvents: one row per audited request and the references of its entities.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", ID, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("recorded", sa.String(26), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
        sa.UniqueConstraint("id", name="uq_audit_event_id"),
    )
    op.create_index("ix_audit_event_recorded", "audit_event", ["recorded"])
    op.create_index("ix_audit_event_agent", "audit_event", ["agent"])
    op.create_table(
        "audit_event_entity",
        sa.Column("event_seq", ID, nullable=False),
        sa.Column("ref_type", sa.String(40), nullable=False),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["event_seq"], ["audit_event.seq"], ondelete="CASCADE",
                                name="fk_audit_event_entity_event_seq_audit_event"),
    )
    op.create_index("ix_audit_event_entity_ref_type_ref_id", "audit_event_entity",
                    ["ref_type", "ref_id"])
    op.create_index("ix_audit_event_entity_event_seq", "audit_event_entity", ["event_seq"])


def downgrade() -> None:
    op.drop_table("audit_event_entity")
    op.drop_table("audit_event")
