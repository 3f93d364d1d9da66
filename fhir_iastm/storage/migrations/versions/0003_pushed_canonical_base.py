"""The canonical base the store's sessions were pushed under (docs/canonical-base.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stores that pushed before this table existed adopt the base of the first worker that
    # starts after the upgrade (the base they pushed under is not recorded anywhere).
    op.create_table(
        "pushed_canonical_base",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("canonical_base", sa.String(2048), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pushed_canonical_base"),
    )


def downgrade() -> None:
    op.drop_table("pushed_canonical_base")
