"""FHIR resource history: the current version's body is stored once (in ``fhir_resource``).

``fhir_resource_version.body`` becomes nullable: NULL means "the body of the ``fhir_resource``
row", which is what the current version (and a retracted resource's gone version) carries. The
write path copies that body into the history rows sharing it before it replaces the body
(``storage/fhir_write.py``). Existing duplicates of current bodies are cleared here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SHARES_CURRENT_BODY = (
    "version = (SELECT r.version FROM fhir_resource r WHERE r.pk = fhir_resource_version.res_pk)"
)


def upgrade() -> None:
    with op.batch_alter_table("fhir_resource_version") as batch:
        batch.alter_column("body", existing_type=JSON, nullable=True)
    # the current version's body equals fhir_resource.body (a gone version keeps the last body)
    op.execute(f"UPDATE fhir_resource_version SET body = NULL WHERE {_SHARES_CURRENT_BODY}")


def downgrade() -> None:
    op.execute("UPDATE fhir_resource_version SET body = (SELECT r.body FROM fhir_resource r "
               "WHERE r.pk = fhir_resource_version.res_pk) WHERE body IS NULL")
    with op.batch_alter_table("fhir_resource_version") as batch:
        batch.alter_column("body", existing_type=JSON, nullable=False)
