"""An index on ``fhir_resource (res_type, pk)``: an export reads the rows of one type in keyset
batches in pk order; without it each batch sorted every row of the type again, so an export took
time quadratic in the store's size (docs/smart-bulk.md#export-speed).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_fhir_resource_res_type_pk", "fhir_resource", ["res_type", "pk"])


def downgrade() -> None:
    op.drop_index("ix_fhir_resource_res_type_pk", "fhir_resource")
