"""FHIR facade tables: resources with version history and their search indexes.

The records of an existing store are indexed afterwards by ``fhir-iastm init-db`` (which runs
this migration, then indexes every record whose ``indexed_version`` is not its current version).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bound() -> sa.String:
    return sa.String(26)


def _index_table(name: str, *columns: sa.Column, indexes: tuple[tuple[str, ...], ...]) -> None:
    op.create_table(
        name,
        sa.Column("res_pk", ID, nullable=False),
        sa.Column("res_type", sa.String(40), nullable=False),
        sa.Column("param", sa.String(40), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"],
                                name=f"fk_{name}_res_pk_fhir_resource"),
    )
    for cols in (*indexes, ("res_pk",)):
        op.create_index(f"ix_{name}_{'_'.join(cols)}", name, list(cols))


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("indexed_version", sa.Integer(), nullable=True))

    op.create_table(
        "fhir_resource",
        sa.Column("pk", ID, autoincrement=True, nullable=False),
        sa.Column("res_type", sa.String(40), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", _bound(), nullable=False),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("source_key", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_fhir_resource"),
        sa.UniqueConstraint("res_type", "res_id", name="uq_fhir_resource_res_type_res_id"),
    )
    op.create_index("ix_fhir_resource_res_id", "fhir_resource", ["res_id"])
    op.create_index("ix_fhir_resource_session_id", "fhir_resource", ["session_id"])
    op.create_index("ix_fhir_resource_res_type_last_updated", "fhir_resource",
                    ["res_type", "last_updated"])

    op.create_table(
        "fhir_resource_version",
        sa.Column("res_pk", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", _bound(), nullable=False),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.PrimaryKeyConstraint("res_pk", "version", name="pk_fhir_resource_version"),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"],
                                name="fk_fhir_resource_version_res_pk_fhir_resource"),
    )

    _index_table("fhir_token",
                 sa.Column("system", sa.String(200), nullable=False),
                 sa.Column("code", sa.String(200), nullable=False),
                 indexes=(("res_type", "param", "code", "system"),))
    _index_table("fhir_string",
                 sa.Column("norm", sa.String(200), nullable=False),
                 sa.Column("exact", sa.String(200), nullable=False),
                 indexes=(("res_type", "param", "norm"),))
    _index_table("fhir_date",
                 sa.Column("ordinal", sa.Integer(), nullable=False),
                 sa.Column("low", _bound(), nullable=False),
                 sa.Column("high", _bound(), nullable=False),
                 indexes=(("res_type", "param", "low"), ("res_type", "param", "high")))
    _index_table("fhir_link",
                 sa.Column("target_type", sa.String(40), nullable=False),
                 sa.Column("target_id", sa.String(64), nullable=False),
                 indexes=(("target_id", "param", "res_type"),))


def downgrade() -> None:
    for table in ("fhir_link", "fhir_date", "fhir_string", "fhir_token",
                  "fhir_resource_version", "fhir_resource"):
        op.drop_table(table)
    with op.batch_alter_table("records") as batch:
        batch.drop_column("indexed_version")
