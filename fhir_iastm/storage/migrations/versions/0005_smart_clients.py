"""SMART Backend Services: registered clients, client-assertion ids seen (replay), signing key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "auth_client",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jwks_url", sa.String(2000), nullable=True),
        sa.Column("jwks", JSON, nullable=True),
        sa.Column("scope", sa.String(2000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_auth_client"),
    )
    op.create_table(
        "auth_jti",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_auth_jti"),
    )
    op.create_index("ix_auth_jti_expires_at", "auth_jti", ["expires_at"])
    op.create_table(
        "auth_key",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_auth_key"),
    )


def downgrade() -> None:
    for table in ("auth_key", "auth_jti", "auth_client"):
        op.drop_table(table)
