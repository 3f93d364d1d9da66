"""Alembic environment for fhir-iastm (packaged; run through ``Store.migrate()``).

The caller passes an open connection in ``config.attributes["connection"]``; with none, the URL
comes from ``sqlalchemy.url`` or the ``database_url`` setting (``IASTM_DATABASE_URL`` /
``DATABASE_URL``). No logging configuration is touched.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from fhir_iastm.config import Settings
from fhir_iastm.storage.engine import make_engine
from fhir_iastm.storage.schema import metadata

#: Serializes concurrent migrators (several gunicorn workers starting at once) on PostgreSQL.
ADVISORY_LOCK_KEY = 0x1A57_0001


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
main()
