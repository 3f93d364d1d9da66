"""Copy a SQLite store built by ``fhir-iastm import`` into PostgreSQL, row for row (issue 9, 12).

    .venv/bin/fhir-iastm init-db --database-url postgresql+psycopg://…/big
    .venv/bin/python benchmarks/copy_store.py SOURCE.db postgresql+psycopg://…/big [--batch 20000]

When it was written the real import stored ~100 sessions/s into PostgreSQL on this 2-core
machine (767/s since 2026-12-06: benchmarks/README.md, "PostgreSQL through the driver"), so
this benchmark tool filled a PostgreSQL store from a SQLite store the real import built: for
each table of the schema (foreign-key order) it reads the SQLite
rows in rowid keyset batches and writes them with PostgreSQL ``COPY`` (the values are the stored
ones: JSON text into ``jsonb``, naive UTC text into ``timestamptz`` under ``TIME ZONE 'UTC'``,
0/1 into ``boolean``). The target must be an empty database created by ``fhir-iastm init-db``
(same schema version as the source). Foreign-key triggers are off during the copy
(``session_replication_role = replica``; the source is a consistent store) and the plain
indexes are dropped before and built again after it (not those of primary keys and unique
constraints), then identity
sequences are moved past the copied keys, every table is ``ANALYZE``d, and the row count of each
table is compared: any difference is an error (exit 1). The result is a row-for-row copy of the
SQLite store: the same records, resources, index rows and ids. All reads of the source are one
read transaction, so a process writing to it meanwhile (a benchmark's audit rows) is not copied
half.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from fhir_iastm.storage.schema import metadata  # noqa: E402

SKIP = {"alembic_version"}  # written by init-db on both sides


def _pg_dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def copy_table(src: sqlite3.Connection, dst: psycopg.Connection, table: str,
               columns: list[str], batch: int) -> int:
    """Copy one table in rowid batches; rows copied."""
    select = (f"SELECT rowid, {', '.join(columns)} FROM {table} "
              f"WHERE rowid > ? ORDER BY rowid LIMIT {batch}")
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    after, done = -1, 0
    with dst.cursor() as cur:
        while True:
            rows = src.execute(select, (after,)).fetchall()
            if not rows:
                return done
            with cur.copy(copy) as out:
                for row in rows:
                    out.write_row(row[1:])
            dst.commit()
            done += len(rows)
            after = rows[-1][0]


def drop_indexes(dst: psycopg.Connection, tables: list[str]) -> list[str]:
    """Drop the plain (not constraint) indexes of ``tables``; their definitions, to build again
    after the copy (one sort per index instead of an insert per row)."""
    rows = dst.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public'"
        " AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
        " WHERE c.conname = i.indexname)", (tables,)).fetchall()
    for name, _ in rows:
        dst.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    dst.commit()
    return [definition for _, definition in rows]


def reset_sequences(dst: psycopg.Connection) -> None:
    """Move each serial/identity sequence past the largest copied key."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            seq = dst.execute("SELECT pg_get_serial_sequence(%s, %s)",
                              (table.name, column.name)).fetchone()
            if seq and seq[0]:
                dst.execute(sql.SQL("SELECT setval(%s, coalesce((SELECT max({}) FROM {}), 0) + 1,"
                                    " false)").format(sql.Identifier(column.name),
                                                      sql.Identifier(table.name)), (seq[0],))
    dst.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the SQLite store (read only)")
    parser.add_argument("target", help="PostgreSQL URL of an empty store made by init-db")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per COPY")
    args = parser.parse_args(argv)
    src = sqlite3.connect(f"file:{args.source}?mode=ro", uri=True, isolation_level=None)
    src.execute("BEGIN")  # one read transaction: every table and count from one snapshot
    dst = psycopg.connect(_pg_dsn(args.target))
    dst.execute("SET TIME ZONE 'UTC'")
    dst.execute("SET session_replication_role = replica")
    dst.execute("SET synchronous_commit = off")
    tables = [t for t in metadata.sorted_tables if t.name not in SKIP]
    for table in tables:
        if dst.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(
                sql.Identifier(table.name))).fetchone():
            raise SystemExit(f"{table.name} is not empty in the target: copy into a fresh store")
    dst.commit()
    started = time.perf_counter()
    indexes = drop_indexes(dst, [t.name for t in tables])
    for table in tables:
        began = time.perf_counter()
        n = copy_table(src, dst, table.name, [c.name for c in table.columns], args.batch)
        print(f"{table.name}: {n:,} rows in {time.perf_counter() - began:.1f} s", flush=True)
    dst.execute("SET session_replication_role = origin")
    began = time.perf_counter()
    dst.execute("SET maintenance_work_mem = '512MB'")
    for definition in indexes:
        dst.execute(definition)
    dst.commit()
    print(f"{len(indexes)} indexes built again in {time.perf_counter() - began:.1f} s", flush=True)
    reset_sequences(dst)
    dst.autocommit = True
    dst.execute("ANALYZE")
    print(f"copied in {time.perf_counter() - started:.0f} s; row counts (SQLite, PostgreSQL):")
    bad = 0
    for table in tables:
        want = src.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
        got = (dst.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table.name))).fetchone() or (None,))[0]
        bad += want != got
        print(f"  {table.name:<28} {want:>12,} {got:>12,}{'' if want == got else '  DIFFERENT'}")
    print("row-for-row copy: every table has the same row count" if not bad
          else f"{bad} table(s) differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
