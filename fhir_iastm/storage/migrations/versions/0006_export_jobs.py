"""Bulk Data $export jobs: one row per kick-off, its status, manifest and expiry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_url", sa.String(4000), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("requires_token", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("transaction_time", TS, nullable=True),
        sa.Column("progress", sa.String(200), nullable=True),
        sa.Column("last_polled_at", TS, nullable=True),
        sa.Column("manifest", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_export_job"),
    )
    op.create_index("ix_export_job_status_created_at", "export_job", ["status", "created_at"])
    op.create_index("ix_export_job_active_owner", "export_job", ["owner"], unique=True,
                    postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    op.drop_table("export_job")
