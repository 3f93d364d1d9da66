"""What one stored session writes on SQLite, counted (deterministic, unlike CPU time on a shared
machine): log pages per POST, by table and index, and B-tree inserts per session.

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_write_pages.py [--warm 200]
                                                                          [--posts 100]

``--warm`` generated sessions (``gen_sessions.records``) are POSTed through Flask's test client
to a fresh SQLite file, the log is checkpointed and emptied, then ``--posts`` more are POSTed and
the log's frames are counted and named by the B-tree their page belongs to (SQLite's ``dbstat``).
Every frame is a 4 KB page written at COMMIT and copied again by the checkpoint. B-tree inserts:
each table's rows per session times (the table + its indexes). ``PYTHONPATH`` picks the code
measured; run it for ``main`` and for a branch. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from pathlib import Path

import fhir_iastm  # first: gen_sessions puts this checkout on sys.path, PYTHONPATH must win
from fhir_iastm.api import create_app
from fhir_iastm.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def wal_frames(wal: Path) -> list[int]:
    """The page number of each frame of a SQLite log file."""
    data = wal.read_bytes()
    size = struct.unpack(">I", data[8:12])[0]
    return [struct.unpack(">I", data[at:at + 4])[0]
            for at in range(32, len(data) - 23, 24 + size)]


def page_names(db: Path) -> dict[int, str]:
    """Page number -> the table or index it belongs to (on a copy, the log applied)."""
    folder = Path(tempfile.mkdtemp())
    shutil.copy(db, folder / "copy.db")
    shutil.copy(db.with_name(db.name + "-wal"), folder / "copy.db-wal")
    with sqlite3.connect(folder / "copy.db") as conn:
        names = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    shutil.rmtree(folder)
    return names


def btree_inserts(db: Path) -> list[tuple[str, float, int]]:
    """(table, rows per session, B-trees: the table and its indexes) of each table with rows."""
    with sqlite3.connect(db) as conn:
        sessions = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        tables = [t for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != 'alembic_version' ORDER BY name")]
        found = []
        for table in tables:
            rows = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            trees = 1 + len(conn.execute(f'PRAGMA index_list("{table}")').fetchall())
            if rows:
                found.append((table, rows / sessions, trees))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--posts", type=int, default=100)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    db = Path(tempfile.mkdtemp()) / "pages.db"
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{db}",
                                        "IASTM_API_TOKENS": "bench:read+write"}))
    client = app.test_client()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    bodies = [json.dumps(b).encode() for b in
              records(args.warm + args.posts, f"W{time.time_ns() % 10**7}")]
    for body in bodies[:args.warm]:
        assert client.post("/api/sessions", data=body, headers=headers).status_code == 201
    store = app.extensions["fhir_iastm"].store
    if store.checkpointer is not None:  # no checkpoint may restart the log while we count
        store.checkpointer.close()
        store.checkpointer = None
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for body in bodies[args.warm:]:
        assert client.post("/api/sessions", data=body, headers=headers).status_code == 201
    frames = wal_frames(db.with_name(db.name + "-wal"))
    names = page_names(db)
    store.close()
    by_tree = collections.Counter(names.get(page, "?") for page in frames)
    print(f"code: {Path(fhir_iastm.__file__).parent.parent}")
    print(f"log frames per POST: {len(frames) / args.posts:.1f} ({args.posts} POSTs after "
          f"{args.warm})")
    for name, count in by_tree.most_common():
        print(f"  {count / args.posts:7.2f}  {name}")
    total = 0.0
    print("B-tree inserts per session (rows per session x B-trees):")
    for table, rows, trees in btree_inserts(db):
        total += rows * trees
        print(f"  {table:24s} {rows:7.2f} x {trees} = {rows * trees:7.2f}")
    print(f"  total {total:.1f}")
    shutil.rmtree(db.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
