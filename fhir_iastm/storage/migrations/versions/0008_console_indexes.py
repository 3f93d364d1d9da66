"""The clinic console's sessions list: the therapist's NPI on each record, and the indexes of a
newest-first list filtered by clinic, therapist or status (docs/console.md#sessions).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NPI = {
    "postgresql": "rv.body -> 'therapist' ->> 'npi'",
    "sqlite": "json_extract(rv.body, '$.therapist.npi')",
}


def upgrade() -> None:
    op.add_column("records", sa.Column("therapist_npi", sa.String(16), nullable=True))
    npi = _NPI[op.get_bind().dialect.name]
    op.execute(
        "UPDATE records SET therapist_npi = (SELECT " + npi + " FROM record_versions rv"
        " WHERE rv.session_id = records.session_id"
        " AND rv.record_version = records.record_version)"
    )
    op.create_index("ix_records_session_start_session_id", "records",
                    ["session_start", "session_id"])
    op.create_index("ix_records_clinic_id_session_start", "records",
                    ["clinic_id", "session_start"])
    op.create_index("ix_records_therapist_npi_session_start", "records",
                    ["therapist_npi", "session_start"])
    op.create_index("ix_records_status_session_start", "records", ["status", "session_start"])


def downgrade() -> None:
    op.drop_index("ix_records_status_session_start", "records")
    op.drop_index("ix_records_therapist_npi_session_start", "records")
    op.drop_index("ix_records_clinic_id_session_start", "records")
    op.drop_index("ix_records_session_start_session_id", "records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("therapist_npi")
