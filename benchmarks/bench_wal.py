"""What the SQLite write-ahead log costs a POST: user and system CPU, and the log's size.

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_wal.py [--posts 1400] [--warm 100]

``--warm`` then ``--posts`` generated sessions (``gen_sessions.records``) are POSTed, one after
the other, through Flask's test client to a fresh SQLite file; printed: user and system CPU ms per
POST of this process (``getrusage``; the checkpoint thread included), wall ms per POST, the
``-wal`` file's size at the end and how often the checkpoint thread rewound the log
(docs/performance.md#checkpoints). ``PYTHONPATH`` picks the code measured: run it for ``main`` and
for a branch, alternating. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import fhir_iastm  # first: gen_sessions puts this checkout on sys.path, PYTHONPATH must win
from fhir_iastm.api import create_app
from fhir_iastm.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1400)
    parser.add_argument("--warm", type=int, default=100)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    folder = Path(tempfile.mkdtemp(prefix="bench-wal-"))
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{folder}/wal.db",
                                        "IASTM_API_TOKENS": "bench:read+write"}))
    client = app.test_client()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    bodies = [json.dumps(r).encode()
              for r in records(args.warm + args.posts, f"W{time.time_ns() % 10**7}")]
    for body in bodies[:args.warm]:
        client.post("/api/sessions", data=body, headers=headers)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for body in bodies[args.warm:]:
        answer = client.post("/api/sessions", data=body, headers=headers)
        assert answer.status_code == 201, answer.data[:300]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    checkpointer = getattr(app.extensions["fhir_iastm"].store, "checkpointer", None)
    n = args.posts
    print(f"code: {Path(fhir_iastm.__file__).parent.parent}")
    print(f"per POST: user {(after.ru_utime - before.ru_utime) / n * 1000:.2f} ms, system "
          f"{(after.ru_stime - before.ru_stime) / n * 1000:.2f} ms, wall {wall / n * 1000:.2f} ms "
          f"({n} POSTs after {args.warm})")
    wal = folder / "wal.db-wal"
    print(f"-wal file: {wal.stat().st_size / 2**20:.1f} MB; checkpoint thread rewinds: "
          f"{getattr(checkpointer, 'rewinds', 'n/a')}")
    app.extensions["fhir_iastm"].store.close()
    shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
