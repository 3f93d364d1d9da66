"""Two indexes no query needs, dropped (docs/performance.md#indexes): each stored session wrote
their pages for nothing.

* ``ix_fhir_resource_res_id``: every lookup by id names the resource type too, which the unique
  ``(res_type, res_id)`` index serves (the write path's locking read does so since this revision);
* ``ix_records_status``: a prefix of ``ix_records_status_session_start``, which serves every
  ``status = ?`` filter.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_fhir_resource_res_id", "fhir_resource")
    op.drop_index("ix_records_status", "records")


def downgrade() -> None:
    op.create_index("ix_records_status", "records", ["status"])
    op.create_index("ix_fhir_resource_res_id", "fhir_resource", ["res_id"])
